package devices

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
)

// Selection names the devices a node should use; exactly one of Paths, NameFilter or FileSize is
// set (the StorageCluster's devices field).
type Selection struct {
	// Paths are explicit device paths.
	Paths []string
	// NameFilter is an RE2 expression matched against block device names (sysfs class "block").
	NameFilter string
	// FileSize asks for one file-backed device of this size in the state directory.
	FileSize int64
	// AllowWipe lets mkfs overwrite devices with a filesystem, another storage layer or a foreign
	// Cobalt store.
	AllowWipe bool
	// MetadataDevices maps some of Paths to the separate metadata device of the store made on
	// each (only with Paths); its values are the node's metadata devices, where a store whose
	// metadata is on a separate device finds it.
	MetadataDevices map[string]string
	// MinSize is the smallest usable device in bytes.
	MinSize int64
}

// FileDeviceName is the name of the file-backed device in the state directory.
const FileDeviceName = "file-device.img"

// Candidates returns the device paths the selection names, sorted. A name filter lists the whole
// disks and partitions under sysRoot/class/block whose name matches, as /dev/<name>.
func (s Selection) Candidates(sysRoot, stateDir string) ([]string, error) {
	set := 0
	if len(s.Paths) > 0 {
		set++
	}
	if s.NameFilter != "" {
		set++
	}
	if s.FileSize > 0 {
		set++
	}
	if set != 1 {
		return nil, fmt.Errorf("devices: exactly one of paths, name filter or file size must be set (%d are)", set)
	}
	switch {
	case len(s.Paths) > 0:
		out := append([]string(nil), s.Paths...)
		sort.Strings(out)
		return out, nil
	case s.FileSize > 0:
		return []string{filepath.Join(stateDir, FileDeviceName)}, nil
	}
	re, err := regexp.Compile(s.NameFilter)
	if err != nil {
		return nil, fmt.Errorf("devices: name filter %q: %w", s.NameFilter, err)
	}
	entries, err := os.ReadDir(filepath.Join(sysRoot, "class", "block"))
	if err != nil {
		return nil, fmt.Errorf("devices: list block devices: %w", err)
	}
	var out []string
	for _, e := range entries {
		if re.MatchString(e.Name()) && !strings.HasPrefix(e.Name(), ".") {
			out = append(out, "/dev/"+e.Name())
		}
	}
	sort.Strings(out)
	return out, nil
}
