package fuseloop

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/go-logr/logr"
)

// Defaults of Options.
const (
	DefaultMaxWrite      = 1 << 20
	DefaultBlockSize     = 4096
	DefaultMaxBackground = 128
	DefaultDetachTimeout = 2 * time.Second
)

// Options configure a Frontend. The zero value of every field but MountDir picks its default.
type Options struct {
	// MountDir is where the FUSE file system is mounted (created if missing). One Frontend owns
	// it: New refuses a directory a live FUSE server already serves.
	MountDir string
	// MaxWrite is the largest READ or WRITE request the kernel sends (default 1 MiB). It is capped
	// at /proc/sys/fs/fuse/max_pages_limit pages.
	MaxWrite int
	// BlockSize is the logical block size of the loop devices: 512, 1024, 2048 or 4096 (default).
	BlockSize int
	// MaxBackground bounds the asynchronous requests (the loop device's direct I/O) the kernel
	// keeps in flight to the daemon (default 128).
	MaxBackground int
	// DetachTimeout is how long Remove and New wait for the kernel to let go of a loop device
	// before they call it busy (default 2s).
	DetachTimeout time.Duration
	// StuckTimeout is how long New waits for the FUSE server at MountDir to answer before it
	// takes that server for stuck (a previous daemon that cannot exit) and aborts its connection
	// (default 5s).
	StuckTimeout time.Duration
	// DisableIOFlusher leaves the process without PR_SET_IO_FLUSHER (see the package doc).
	DisableIOFlusher bool
	// Log receives recovery reports and I/O errors.
	Log logr.Logger
}

// withDefaults returns a copy of o with defaults applied and MountDir absolute, or an error if o
// cannot work.
func (o Options) withDefaults() (Options, error) {
	if o.MountDir == "" {
		return o, fmt.Errorf("fuseloop options: MountDir is required")
	}
	dir, err := filepath.Abs(o.MountDir)
	if err != nil {
		return o, fmt.Errorf("fuseloop options: MountDir %q: %w", o.MountDir, err)
	}
	if dir == "/" {
		return o, fmt.Errorf("fuseloop options: MountDir must not be /")
	}
	o.MountDir = dir
	if o.MaxWrite == 0 {
		o.MaxWrite = DefaultMaxWrite
	}
	if o.StuckTimeout == 0 {
		o.StuckTimeout = 5 * time.Second
	}
	if o.MaxWrite < 4096 {
		return o, fmt.Errorf("fuseloop options: MaxWrite %d is below 4096", o.MaxWrite)
	}
	o.MaxWrite = min(o.MaxWrite, maxKernelRequest())
	if o.BlockSize == 0 {
		o.BlockSize = DefaultBlockSize
	}
	switch o.BlockSize {
	case 512, 1024, 2048, 4096:
	default:
		return o, fmt.Errorf("fuseloop options: BlockSize %d is not 512, 1024, 2048 or 4096", o.BlockSize)
	}
	if o.MaxBackground == 0 {
		o.MaxBackground = DefaultMaxBackground
	}
	if o.MaxBackground < 1 || o.MaxBackground > 65535 {
		return o, fmt.Errorf("fuseloop options: MaxBackground %d is not in [1, 65535]", o.MaxBackground)
	}
	if o.DetachTimeout == 0 {
		o.DetachTimeout = DefaultDetachTimeout
	}
	if o.DetachTimeout < 0 {
		return o, fmt.Errorf("fuseloop options: DetachTimeout %v is negative", o.DetachTimeout)
	}
	return o, nil
}

// maxKernelRequest is the largest request the kernel allows a FUSE server: max_pages_limit
// pages (256 unless the administrator changed it), or 128 KiB on kernels without the knob.
func maxKernelRequest() int {
	b, err := os.ReadFile("/proc/sys/fs/fuse/max_pages_limit")
	if err != nil {
		return 32 * os.Getpagesize()
	}
	pages, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pages < 1 {
		return 32 * os.Getpagesize()
	}
	return pages * os.Getpagesize()
}
