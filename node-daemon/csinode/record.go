package csinode

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
)

// Versions of the stage record format. A record is written at the lowest version that can hold
// it, so a daemon that reads only version 1 still reads every single-copy volume's record after a
// rollback; a record of a version this daemon does not know is refused.
const (
	// recordV1: single-copy volumes.
	recordV1 = 1
	// recordV2 adds Replicas and Generation (replicated volumes).
	recordV2 = 2
)

// Access types of a staged volume or a publish target.
const (
	accessMount = "mount"
	accessBlock = "block"
)

// record is what the node plugin remembers about one staged volume. Kubelet passes the volume
// context to NodeStageVolume and NodePublishVolume only, so the record is how the later calls and
// Recover find the volume's store, its device and its mounts.
type record struct {
	Version  int    `json:"version"`
	VolumeID string `json:"volumeID"`
	// Volume is the Volume object, "<namespace>/<name>" (for events and logs).
	Volume    string `json:"volume,omitempty"`
	StoreUUID string `json:"storeUUID"`
	VolumeUID string `json:"volumeUID"`
	// StagingPath is the staging target path kubelet gave NodeStageVolume.
	StagingPath string `json:"stagingPath"`
	// AccessType is accessMount or accessBlock; AccessMode the CSI access mode's name.
	AccessType string   `json:"accessType"`
	AccessMode string   `json:"accessMode"`
	FsType     string   `json:"fsType,omitempty"`
	MountFlags []string `json:"mountFlags,omitempty"`
	// Replicas is a replicated volume's number of copies (volume context driver.ContextReplicas);
	// 0 for a single-copy volume (and in every version 1 record).
	Replicas int `json:"replicas,omitempty"`
	// Generation is the attachment generation a replicated volume is served at (publish context
	// driver.PublishContextGeneration of the last NodeStageVolume); Recover reopens it at this one.
	Generation uint64 `json:"generation,omitempty"`
	// Device is the block device the frontend exposes the volume as, "" until exposed.
	Device string `json:"device,omitempty"`
	// Targets are the publish targets, by path.
	Targets map[string]target `json:"targets,omitempty"`
}

// target is one publish target of a staged volume.
type target struct {
	AccessType string   `json:"accessType"`
	Readonly   bool     `json:"readonly"`
	MountFlags []string `json:"mountFlags,omitempty"`
}

// replicated reports whether r's volume is served through the replicated data path.
func (r *record) replicated() bool { return r.Replicas > 1 }

// version is the lowest record version that holds r.
func (r *record) version() int {
	if r.replicated() || r.Generation != 0 {
		return recordV2
	}
	return recordV1
}

// targetPaths returns the record's publish targets, sorted.
func (r *record) targetPaths() []string {
	out := make([]string, 0, len(r.Targets))
	for p := range r.Targets {
		out = append(out, p)
	}
	sort.Strings(out)
	return out
}

// targetOK returns the target at path of a record that may be nil.
func (r *record) targetOK(path string) (target, bool) {
	if r == nil {
		return target{}, false
	}
	t, ok := r.Targets[path]
	return t, ok
}

// sameStage reports whether r was staged with the same capability as want.
func (r *record) sameStage(want *record) bool {
	return r.AccessType == want.AccessType && r.AccessMode == want.AccessMode &&
		r.FsType == want.FsType && slices.Equal(r.MountFlags, want.MountFlags)
}

// records keeps one JSON file per staged volume in a directory. Writes are atomic: a temp file
// is written and fsync'd, renamed over the record, and the directory is fsync'd, so a crash
// leaves either the old record or the new one.
type records struct {
	dir string
}

func (rs records) path(volumeID string) string {
	return filepath.Join(rs.dir, url.PathEscape(volumeID)+".json")
}

// load returns the record of volumeID, or nil when there is none.
func (rs records) load(volumeID string) (*record, error) {
	return rs.read(rs.path(volumeID))
}

func (rs records) read(path string) (*record, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read stage record: %w", err)
	}
	var r record
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, fmt.Errorf("stage record %s is not valid JSON: %w", path, err)
	}
	if r.Version < recordV1 || r.Version > recordV2 {
		return nil, fmt.Errorf("stage record %s has version %d, this daemon reads versions %d to %d", path, r.Version, recordV1, recordV2)
	}
	return &r, nil
}

// save writes r atomically.
func (rs records) save(r *record) error {
	r.Version = r.version()
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("encode stage record of %s: %w", r.VolumeID, err)
	}
	if err := os.MkdirAll(rs.dir, 0o700); err != nil {
		return fmt.Errorf("stage record directory: %w", err)
	}
	final := rs.path(r.VolumeID)
	tmp, err := os.CreateTemp(rs.dir, ".record-*.tmp")
	if err != nil {
		return fmt.Errorf("stage record of %s: %w", r.VolumeID, err)
	}
	defer os.Remove(tmp.Name()) // fails harmlessly once renamed
	_, err = tmp.Write(data)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), final)
	}
	if err == nil {
		err = syncDir(rs.dir)
	}
	if err != nil {
		return fmt.Errorf("write stage record of %s: %w", r.VolumeID, err)
	}
	return nil
}

// remove deletes the record of volumeID; a missing record is not an error.
func (rs records) remove(volumeID string) error {
	err := os.Remove(rs.path(volumeID))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove stage record of %s: %w", volumeID, err)
	}
	if err := syncDir(rs.dir); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove stage record of %s: %w", volumeID, err)
	}
	return nil
}

// list returns every record. A record that cannot be read is returned as an error next to the
// others, so one bad file does not hide the rest.
func (rs records) list() ([]*record, []error) {
	entries, err := os.ReadDir(rs.dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, []error{fmt.Errorf("list stage records: %w", err)}
	}
	var out []*record
	var errs []error
	for _, e := range entries {
		if e.IsDir() || strings.HasPrefix(e.Name(), ".") || !strings.HasSuffix(e.Name(), ".json") {
			continue
		}
		r, err := rs.read(filepath.Join(rs.dir, e.Name()))
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if r != nil {
			out = append(out, r)
		}
	}
	return out, errs
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
