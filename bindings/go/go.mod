module github.com/mm-session/mm-session/bindings/go

go 1.19
