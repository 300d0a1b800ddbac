// Package faultdev is a fault-injecting blockdev.Device for tests, in the spirit of pebble's
// vfs/errorfs: it wraps a blockdev.MemDevice, models the device's volatile write cache and lets a
// test cut the power, fail operations with chosen errors (EIO, ENOSPC, ...) and flip bits.
//
// # What survives a power cut
//
// The device keeps two images: the durable image (what the media holds) and the current image (what
// reads return). A WriteAt updates the current image at once and is recorded as pending; a
// successful Flush moves every pending write into the durable image. At a power cut (PowerCut, a
// Rule with PowerCut set, or Crash) the device stops: that operation and every later one fails with
// ErrPoweredOff, and the pending list is frozen. Crash(rng) then builds the post-cut image:
//
//   - the durable image is kept exactly;
//   - every pending write, independently and in the order it was issued, is KEPT whole, LOST
//     whole, or TORN: only a prefix of its sectors (Options.SectorSize, 512 bytes by default,
//     1 to n-1 sectors of n) reaches the media, the rest keeps the older contents;
//   - a later kept (or torn) write overlapping an earlier one wins where it was applied.
//
// Each of the three outcomes has probability 1/3 (a single-sector write is kept or lost). So data
// written and flushed before the cut always survives, and nothing else is promised, exactly the
// contract of blockdev.Device. Crash does not change the frozen state, so several calls give
// several possible outcomes of one cut.
//
// CrashImage builds the same kind of image for a cut at that instant without stopping the device,
// for software that cannot survive its device failing under it; CrashImages does it for a cut that
// hits several devices at one instant.
//
// # Injected errors
//
// Rules (Inject) fail matching operations with an error that wraps both the rule's error (e.g.
// syscall.EIO) and ErrInjected. A failed write changes nothing and is not pending; a failed flush
// leaves the pending writes pending. FlipBit flips a bit in both images, modeling bit rot on the
// media.
//
// Everything is deterministic given the sequence of calls and the rng passed to Crash: there is no
// hidden randomness and no package-level state. A Device is safe for concurrent use; concurrent
// operations are ordered by an internal lock.
package faultdev

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"

	"github.com/cobaltstore/cobalt/storage-engine/blockdev"
)

var (
	// ErrPoweredOff is returned by every operation after a power cut.
	ErrPoweredOff = errors.New("faultdev: device powered off")
	// ErrInjected is wrapped by every error a Rule injects.
	ErrInjected = errors.New("faultdev: injected fault")
)

// Options configure a Device.
type Options struct {
	// SectorSize is the atomic write unit used when tearing writes at a power cut. It must be a
	// power of two that divides the block size; 0 means 512 (or the block size if smaller).
	SectorSize int
}

// Device is a fault-injecting blockdev.Device. Create it with New.
type Device struct {
	cur        *blockdev.MemDevice // what reads see; shared with the caller of New
	blockSize  int
	sectorSize int

	// mu guards the fields in this struct.
	mu struct {
		sync.Mutex
		durable *blockdev.MemDevice // contents that survive a power cut
		pending []pendingWrite      // writes since the last successful Flush, in issue order
		rules   []*ruleState
		powered bool
		closed  bool
		stats   Stats
	}
}

type pendingWrite struct {
	off  int64
	data []byte
}

// Stats counts the operations a Device has seen (including failed ones).
type Stats struct {
	Reads, Writes, Flushes int64
	Injected               int64 // operations failed by a rule
	Pending                int   // writes not yet flushed
}

var _ blockdev.Device = (*Device)(nil)

// New wraps base. base's contents at this moment are taken as durable. base must not be written
// except through the returned Device; reading it directly shows the current (not durable) image.
func New(base *blockdev.MemDevice, opts Options) (*Device, error) {
	bs := base.BlockSize()
	ss := opts.SectorSize
	if ss == 0 {
		ss = min(512, bs)
	}
	if ss <= 0 || ss&(ss-1) != 0 || bs%ss != 0 {
		return nil, fmt.Errorf("faultdev: sector size %d must be a power of two dividing block size %d", ss, bs)
	}
	d := &Device{cur: base, blockSize: bs, sectorSize: ss}
	d.mu.durable = base.Clone()
	d.mu.powered = true
	return d, nil
}

// ReadAt implements blockdev.Device.
func (d *Device) ReadAt(p []byte, off int64) (int, error) {
	d.mu.Lock()
	d.mu.stats.Reads++
	if err := d.admitLocked(OpRead, off, int64(len(p))); err != nil {
		d.mu.Unlock()
		return 0, err
	}
	d.mu.Unlock()
	return d.cur.ReadAt(p, off)
}

// WriteAt implements blockdev.Device. The write is pending (lost or torn at a power cut) until a
// later Flush succeeds.
func (d *Device) WriteAt(p []byte, off int64) (int, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.mu.stats.Writes++
	if err := d.admitLocked(OpWrite, off, int64(len(p))); err != nil {
		return 0, err
	}
	n, err := d.cur.WriteAt(p, off)
	if err != nil {
		return n, err
	}
	d.mu.pending = append(d.mu.pending, pendingWrite{off: off, data: append([]byte(nil), p...)})
	return n, nil
}

// Flush implements blockdev.Device: every pending write becomes durable.
func (d *Device) Flush() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.mu.stats.Flushes++
	if err := d.admitLocked(OpFlush, 0, 0); err != nil {
		return err
	}
	for _, w := range d.mu.pending {
		if _, err := d.mu.durable.WriteAt(w.data, w.off); err != nil {
			return fmt.Errorf("faultdev: flush: %w", err)
		}
	}
	d.mu.pending = nil
	return d.cur.Flush()
}

// admitLocked decides whether an operation may proceed: it fails after Close or a power cut, and
// applies the rules.
// REQUIRES: d.mu held.
func (d *Device) admitLocked(op Op, off, length int64) error {
	if d.mu.closed {
		return fmt.Errorf("faultdev: %s at %d: %w", op, off, blockdev.ErrClosed)
	}
	if !d.mu.powered {
		return fmt.Errorf("faultdev: %s at %d: %w", op, off, ErrPoweredOff)
	}
	for _, r := range d.mu.rules {
		if !r.matches(op, off, length) {
			continue
		}
		if !r.fire() {
			continue
		}
		d.mu.stats.Injected++
		if r.PowerCut {
			d.mu.powered = false
			return fmt.Errorf("faultdev: %s at %d: power cut by rule: %w", op, off, ErrPoweredOff)
		}
		return fmt.Errorf("faultdev: %s at %d: %w (%w)", op, off, r.Err, ErrInjected)
	}
	return nil
}

// Size implements blockdev.Device.
func (d *Device) Size() int64 { return d.cur.Size() }

// BlockSize implements blockdev.Device.
func (d *Device) BlockSize() int { return d.blockSize }

// Rotational implements blockdev.Device.
func (d *Device) Rotational() bool { return d.cur.Rotational() }

// Close implements blockdev.Device. Pending writes stay pending (Close does not flush), so Crash
// still works after Close.
func (d *Device) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.mu.closed {
		return fmt.Errorf("faultdev: close: %w", blockdev.ErrClosed)
	}
	d.mu.closed = true
	return nil
}

// Stats returns the operation counters.
func (d *Device) Stats() Stats {
	d.mu.Lock()
	defer d.mu.Unlock()
	s := d.mu.stats
	s.Pending = len(d.mu.pending)
	return s
}

// PowerCut stops the device now: every later operation fails with ErrPoweredOff.
func (d *Device) PowerCut() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.mu.powered = false
}

// PoweredOff reports whether the power has been cut.
func (d *Device) PoweredOff() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return !d.mu.powered
}

// Outcome is what happened to one pending write at a simulated power cut.
type Outcome struct {
	Offset, Length int64
	// Persisted is the number of bytes from the start of the write that reached the media: 0 (lost),
	// Length (kept) or a whole number of sectors in between (torn).
	Persisted int64
}

// Crash cuts the power (if not already cut) and returns a new, independent MemDevice holding a
// possible post-cut image, chosen with rng as the package documentation describes.
func (d *Device) Crash(rng *rand.Rand) (*blockdev.MemDevice, error) {
	img, _, err := d.CrashReport(rng)
	return img, err
}

// CrashReport is Crash that also says what happened to each pending write, in issue order.
func (d *Device) CrashReport(rng *rand.Rand) (*blockdev.MemDevice, []Outcome, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.mu.powered = false
	return d.crashImageLocked(rng)
}

// CrashImage returns a possible post-cut image of a power cut at this instant, chosen with rng as
// Crash does, and the outcome of each pending write, but leaves the device running. Software that
// cannot survive its device failing under it (pebble panics when a WAL write fails) is tested this
// way: the image is taken while it runs, and it is then stopped cleanly. Every write that was
// flushed before the call is in the image.
func (d *Device) CrashImage(rng *rand.Rand) (*blockdev.MemDevice, []Outcome, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.crashImageLocked(rng)
}

// CrashImages is CrashImage for a power cut that hits several devices at one instant (a store
// and its separate metadata device on one machine): it holds every device's lock while it builds
// the images, so each operation on any of them completed before the cut or starts after it, and a
// write one device made durable before the cut is in its image whatever another device's image
// holds. It returns the images and outcomes in the order of devs. The devices must be distinct.
func CrashImages(rng *rand.Rand, devs ...*Device) ([]*blockdev.MemDevice, [][]Outcome, error) {
	for i, d := range devs {
		for _, e := range devs[:i] {
			if d == e {
				return nil, nil, errors.New("faultdev: CrashImages: a device given twice")
			}
		}
	}
	for _, d := range devs {
		d.mu.Lock()
		defer d.mu.Unlock()
	}
	imgs := make([]*blockdev.MemDevice, len(devs))
	outs := make([][]Outcome, len(devs))
	for i, d := range devs {
		img, out, err := d.crashImageLocked(rng)
		if err != nil {
			return nil, nil, err
		}
		imgs[i], outs[i] = img, out
	}
	return imgs, outs, nil
}

// crashImageLocked builds a post-cut image from the durable image and the pending writes.
// REQUIRES: d.mu.
func (d *Device) crashImageLocked(rng *rand.Rand) (*blockdev.MemDevice, []Outcome, error) {
	img := d.mu.durable.Clone()
	img.SetRotational(d.cur.Rotational())
	outcomes := make([]Outcome, 0, len(d.mu.pending))
	ss := int64(d.sectorSize)
	for _, w := range d.mu.pending {
		n := int64(len(w.data))
		sectors := n / ss
		var keep int64
		switch rng.IntN(3) {
		case 0: // kept whole
			keep = n
		case 1: // lost
			keep = 0
		default: // torn; a single sector cannot tear, so it is kept or lost
			if sectors > 1 {
				keep = (1 + rng.Int64N(sectors-1)) * ss
			} else if rng.IntN(2) == 0 {
				keep = n
			}
		}
		outcomes = append(outcomes, Outcome{Offset: w.off, Length: n, Persisted: keep})
		if keep > 0 {
			if err := writePrefix(img, w.data[:keep], w.off); err != nil {
				return nil, nil, err
			}
		}
	}
	return img, outcomes, nil
}

// writePrefix writes data, a whole number of sectors starting at the block-aligned offset off,
// into img, keeping the old contents of the rest of the last block.
func writePrefix(img *blockdev.MemDevice, data []byte, off int64) error {
	bs := img.BlockSize()
	buf := blockdev.AlignedBuffer((len(data) + bs - 1) / bs * bs)
	if _, err := img.ReadAt(buf, off); err != nil {
		return fmt.Errorf("faultdev: crash image: %w", err)
	}
	copy(buf, data)
	if _, err := img.WriteAt(buf, off); err != nil {
		return fmt.Errorf("faultdev: crash image: %w", err)
	}
	return nil
}

// DurableImage returns an independent copy of the durable image: the post-cut image in which every
// pending write was lost. It does not cut the power.
func (d *Device) DurableImage() *blockdev.MemDevice {
	d.mu.Lock()
	defer d.mu.Unlock()
	img := d.mu.durable.Clone()
	img.SetRotational(d.cur.Rotational())
	return img
}

// CurrentImage returns an independent copy of what reads currently return: the post-cut image in
// which every pending write was kept. It does not cut the power.
func (d *Device) CurrentImage() *blockdev.MemDevice { return d.cur.Clone() }

// FlipBit inverts bit (0-7) of the byte at off in both the durable and the current image, as bit
// rot on the media would. Pending writes that cover off and are later kept overwrite the flip.
func (d *Device) FlipBit(off int64, bit uint) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.cur.FlipBit(off, bit); err != nil {
		return fmt.Errorf("faultdev: %w", err)
	}
	if err := d.mu.durable.FlipBit(off, bit); err != nil {
		return fmt.Errorf("faultdev: %w", err)
	}
	return nil
}
