//go:build !cgo

package fuseloop

const cgoEnabled = false
