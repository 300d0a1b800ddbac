//go:build cgo

package fuseloop

const cgoEnabled = true
