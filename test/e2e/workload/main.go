// Command workload is what the e2e suite's Pods run on Cobalt volumes (nothing can be pulled on
// the e2e machine, so the harness packs this program into an image, as it does the pause
// program). Every line it prints starts with a word the suite parses:
//
//	files DIR N SIZE     verify DIR/manifest (VERIFIED n / MISMATCH name), write N files of SIZE
//	                     random bytes, each fsync'd with its directory before its sha256 is added
//	                     to the manifest (WROTE name sum), then print READY and, every second,
//	                     STATFS total=<bytes> avail=<bytes> of DIR.
//	block DEVICE SIZE    write SIZE random bytes with O_DIRECT at the start and at the end of the
//	                     raw DEVICE, fdatasync, read them back with O_DIRECT and compare
//	                     (BLOCK ok size=<device bytes> sum=<sha256>), then sleep.
//	overwrite DIR NAME SIZE
//	                     print the sha256 of DIR/NAME (FOUND <sum>, or FOUND none), then, if SIZE
//	                     is not 0, overwrite it in place (the same blocks, no truncation before)
//	                     with SIZE random bytes, fsync it and DIR (WROTE <sum>); then print READY
//	                     and sleep.
//	journal DIR          verify DIR/journal (VERIFIED upto=<n>: every record 1..n is intact), then
//	                     append records 4 KiB each, printing ACK <n> after record n's fdatasync
//	                     returned; on a write or sync error print ERROR and exit 1, so the
//	                     container restarts and verifies again.
//
// It exits non-zero on any failure, with the reason on stderr.
package main

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "workload:", err)
		fmt.Println("ERROR", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) == 0 {
		return errors.New("usage: workload files DIR N SIZE | block DEVICE SIZE | overwrite DIR NAME SIZE | journal DIR")
	}
	switch args[0] {
	case "files":
		if len(args) != 4 {
			return errors.New("usage: workload files DIR N SIZE")
		}
		n, err1 := strconv.Atoi(args[2])
		size, err2 := strconv.ParseInt(args[3], 10, 64)
		if err := errors.Join(err1, err2); err != nil {
			return err
		}
		return files(args[1], n, size)
	case "block":
		if len(args) != 3 {
			return errors.New("usage: workload block DEVICE SIZE")
		}
		size, err := strconv.ParseInt(args[2], 10, 64)
		if err != nil {
			return err
		}
		return block(args[1], size)
	case "overwrite":
		if len(args) != 4 {
			return errors.New("usage: workload overwrite DIR NAME SIZE")
		}
		size, err := strconv.ParseInt(args[3], 10, 64)
		if err != nil {
			return err
		}
		return overwrite(args[1], args[2], size)
	case "journal":
		if len(args) != 2 {
			return errors.New("usage: workload journal DIR")
		}
		return journal(args[1])
	}
	return fmt.Errorf("unknown command %q", args[0])
}

// files verifies the manifest of an earlier run, writes n new files and then reports statfs.
func files(dir string, n int, size int64) error {
	manifest := filepath.Join(dir, "manifest")
	verified, err := verifyManifest(dir, manifest)
	if err != nil {
		return err
	}
	fmt.Println("VERIFIED", verified)
	mf, err := os.OpenFile(manifest, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer mf.Close()
	host, _ := os.Hostname()
	for i := 0; i < n; i++ {
		name := fmt.Sprintf("%s-%d-%d", host, time.Now().UnixNano(), i)
		sum, err := writeFile(filepath.Join(dir, name), size)
		if err != nil {
			return err
		}
		if err := syncDir(dir); err != nil {
			return err
		}
		if _, err := fmt.Fprintf(mf, "%s %s\n", name, sum); err != nil {
			return err
		}
		if err := mf.Sync(); err != nil {
			return err
		}
		fmt.Println("WROTE", name, sum)
	}
	fmt.Println("READY")
	for {
		var st unix.Statfs_t
		if err := unix.Statfs(dir, &st); err != nil {
			return fmt.Errorf("statfs %s: %w", dir, err)
		}
		fmt.Printf("STATFS total=%d avail=%d\n", int64(st.Blocks)*st.Bsize, int64(st.Bavail)*st.Bsize)
		time.Sleep(time.Second)
	}
}

func verifyManifest(dir, manifest string) (int, error) {
	data, err := os.ReadFile(manifest)
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	n := 0
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		name, want, ok := strings.Cut(sc.Text(), " ")
		if !ok {
			return n, fmt.Errorf("manifest line %q is malformed", sc.Text())
		}
		got, err := sumFile(filepath.Join(dir, name))
		if err != nil {
			return n, fmt.Errorf("MISMATCH %s: %w", name, err)
		}
		if got != want {
			return n, fmt.Errorf("MISMATCH %s: sha256 %s, manifest says %s", name, got, want)
		}
		n++
	}
	return n, sc.Err()
}

func writeFile(path string, size int64) (string, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.CopyN(io.MultiWriter(f, h), rand.Reader, size); err != nil {
		return "", fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		return "", fmt.Errorf("fsync %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), f.Close()
}

// overwrite reports the checksum of dir/name and, for size > 0, overwrites the file in place, so a
// snapshot taken before keeps the old blocks while the volume gets new ones.
func overwrite(dir, name string, size int64) error {
	if size < 0 {
		return fmt.Errorf("size %d is negative", size)
	}
	path := filepath.Join(dir, name)
	found, err := sumFile(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		found = "none"
	case err != nil:
		return err
	}
	fmt.Println("FOUND", found)
	if size > 0 {
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE, 0o644)
		if err != nil {
			return err
		}
		defer f.Close()
		h := sha256.New()
		if _, err := io.CopyN(io.MultiWriter(f, h), rand.Reader, size); err != nil {
			return fmt.Errorf("write %s: %w", path, err)
		}
		if err := f.Truncate(size); err != nil {
			return fmt.Errorf("truncate %s: %w", path, err)
		}
		if err := f.Sync(); err != nil {
			return fmt.Errorf("fsync %s: %w", path, err)
		}
		if err := syncDir(dir); err != nil {
			return err
		}
		fmt.Println("WROTE", hex.EncodeToString(h.Sum(nil)))
	}
	fmt.Println("READY")
	for {
		time.Sleep(time.Hour)
	}
}

func sumFile(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// alignedBuffer returns n bytes aligned for O_DIRECT.
func alignedBuffer(n int) []byte {
	const align = 4096
	b := make([]byte, n+align)
	off := align - int(uintptr(unsafe.Pointer(&b[0]))&(align-1))
	if off == align {
		off = 0
	}
	return b[off : off+n]
}

// block writes and reads back the raw device with O_DIRECT at its start and its end.
func block(dev string, size int64) error {
	if size <= 0 || size%4096 != 0 {
		return fmt.Errorf("size %d must be a positive multiple of 4096", size)
	}
	f, err := os.OpenFile(dev, os.O_RDWR|unix.O_DIRECT, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	devSize, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		return err
	}
	if devSize < 2*size {
		return fmt.Errorf("device %s has %d bytes, fewer than 2x%d", dev, devSize, size)
	}
	buf := alignedBuffer(int(size))
	h := sha256.New()
	for _, off := range []int64{0, devSize - size} {
		if _, err := rand.Read(buf); err != nil {
			return err
		}
		want := sha256.Sum256(buf)
		h.Write(want[:])
		if _, err := f.WriteAt(buf, off); err != nil {
			return fmt.Errorf("O_DIRECT write at %d: %w", off, err)
		}
		if err := unix.Fdatasync(int(f.Fd())); err != nil {
			return fmt.Errorf("fdatasync: %w", err)
		}
		clear(buf)
		if _, err := f.ReadAt(buf, off); err != nil {
			return fmt.Errorf("O_DIRECT read at %d: %w", off, err)
		}
		if got := sha256.Sum256(buf); got != want {
			return fmt.Errorf("read back at %d differs from what was written", off)
		}
	}
	fmt.Printf("BLOCK ok size=%d sum=%s\n", devSize, hex.EncodeToString(h.Sum(nil)))
	for {
		time.Sleep(time.Hour)
	}
}

const recordSize = 4096

// record n: 8 bytes n, 32 bytes sha256 of the payload, then the payload.
func makeRecord(n uint64, buf []byte) {
	binary.LittleEndian.PutUint64(buf[0:8], n)
	_, _ = rand.Read(buf[40:])
	sum := sha256.Sum256(buf[40:])
	copy(buf[8:40], sum[:])
}

func recordOK(n uint64, buf []byte) bool {
	if binary.LittleEndian.Uint64(buf[0:8]) != n {
		return false
	}
	sum := sha256.Sum256(buf[40:])
	return bytes.Equal(sum[:], buf[8:40])
}

// journal verifies the records an earlier run wrote and appends more, one fdatasync each.
func journal(dir string) error {
	path := filepath.Join(dir, "journal")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := syncDir(dir); err != nil {
		return err
	}
	buf := make([]byte, recordSize)
	var n uint64
	for {
		if _, err := f.ReadAt(buf, int64(n)*recordSize); err != nil {
			break // EOF or a short last record: records past n were never acknowledged
		}
		if !recordOK(n+1, buf) {
			break
		}
		n++
	}
	fmt.Printf("VERIFIED upto=%d\n", n)
	for {
		n++
		makeRecord(n, buf)
		if _, err := f.WriteAt(buf, int64(n-1)*recordSize); err != nil {
			return fmt.Errorf("write record %d: %w", n, err)
		}
		if err := unix.Fdatasync(int(f.Fd())); err != nil {
			return fmt.Errorf("fdatasync record %d: %w", n, err)
		}
		fmt.Println("ACK", n)
		time.Sleep(20 * time.Millisecond)
	}
}
