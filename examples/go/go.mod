module mm-session/examples/go

go 1.19

require mm-session/mmsession v0.0.0

replace mm-session/mmsession => ../../bindings/go
