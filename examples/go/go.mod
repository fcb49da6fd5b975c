module mm-session/examples/go

go 1.19

require github.com/mm-session/mm-session/bindings/go v0.3.0

replace github.com/mm-session/mm-session/bindings/go => ../../bindings/go
