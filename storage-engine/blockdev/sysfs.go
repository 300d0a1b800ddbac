package blockdev

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// queueProps are the properties of a block device's request queue as sysfs reports them.
type queueProps struct {
	logicalBlockSize  int
	physicalBlockSize int
	rotational        bool
	sizeBytes         int64 // from <dev>/size (512-byte sectors); 0 if unknown
}

// readQueueProps reads the queue properties of block device major:minor below sysRoot (normally
// "/sys"), via <sysRoot>/dev/block/M:m. For a partition, whose directory has no queue/, the parent
// disk's queue is used.
func readQueueProps(sysRoot string, major, minor uint32) (queueProps, error) {
	devDir := filepath.Join(sysRoot, "dev", "block", fmt.Sprintf("%d:%d", major, minor))
	resolved, err := filepath.EvalSymlinks(devDir)
	if err != nil {
		return queueProps{}, fmt.Errorf("sysfs entry for block device %d:%d: %w", major, minor, err)
	}
	queue := filepath.Join(resolved, "queue")
	if _, err := os.Stat(queue); errors.Is(err, fs.ErrNotExist) {
		queue = filepath.Join(filepath.Dir(resolved), "queue") // a partition: use its disk's queue
	}
	var p queueProps
	if p.logicalBlockSize, err = readSysfsInt(filepath.Join(queue, "logical_block_size")); err != nil {
		return queueProps{}, err
	}
	if p.physicalBlockSize, err = readSysfsInt(filepath.Join(queue, "physical_block_size")); err != nil {
		return queueProps{}, err
	}
	rot, err := readSysfsInt(filepath.Join(queue, "rotational"))
	if err != nil {
		return queueProps{}, err
	}
	p.rotational = rot != 0
	if sectors, err := readSysfsInt(filepath.Join(resolved, "size")); err == nil {
		p.sizeBytes = int64(sectors) * 512
	}
	return p, nil
}

// rotationalOf reports whether the block device major:minor (the device holding a regular file)
// is rotational. Devices without a sysfs entry (tmpfs, overlay, ...) count as non-rotational.
func rotationalOf(sysRoot string, major, minor uint32) bool {
	p, err := readQueueProps(sysRoot, major, minor)
	return err == nil && p.rotational
}

func readSysfsInt(path string) (int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, fmt.Errorf("read sysfs: %w", err)
	}
	v, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return 0, fmt.Errorf("parse sysfs %s: %w", path, err)
	}
	return v, nil
}
