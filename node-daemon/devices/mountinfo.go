package devices

import (
	"bufio"
	"fmt"
	"io"
	"strings"
)

// mount is one line of /proc/self/mountinfo that matters here.
type mount struct {
	devID      string // "major:minor"
	mountPoint string
	source     string
}

// parseMountInfo reads mountinfo (proc(5)): field 3 is major:minor, field 5 the mount point, and
// the mount source follows the " - fstype " separator.
func parseMountInfo(r io.Reader) ([]mount, error) {
	var out []mount
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		pre, post, ok := strings.Cut(line, " - ")
		fields := strings.Fields(pre)
		if !ok || len(fields) < 5 {
			return nil, fmt.Errorf("devices: malformed mountinfo line %q", line)
		}
		m := mount{devID: fields[2], mountPoint: fields[4]}
		if pf := strings.Fields(post); len(pf) >= 2 {
			m.source = pf[1]
		}
		out = append(out, m)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("devices: read mountinfo: %w", err)
	}
	return out, nil
}
