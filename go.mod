// The Go bindings (go/botcall) and Go examples (examples/go). Standard
// library and cgo only: no requires, nothing to download.
module example.invalid/botcall

go 1.19
