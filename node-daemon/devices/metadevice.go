package devices

import (
	"fmt"
	"sort"
)

// MinMetadataDeviceSize is the smallest separate metadata device the daemon uses (the engine
// needs 8 MiB of region after the label; this leaves room for a useful database).
const MinMetadataDeviceSize = 64 << 20

// WithMetadataDevice completes d, the decision for one of sel's devices, with its separate
// metadata device, or turns it into a Skip that says why it cannot have one:
//   - Mount of a store whose metadata is on a separate device: the device among sel's metadata
//     devices whose label is that store's metadata device (a pair moved from another node is
//     found whatever the paths); none found is a Skip naming the store;
//   - Mkfs of a device sel gives a metadata device: that device must be usable as Inspect decides
//     for a new store (blank, or wipeable with AllowWipe, then Force is set), or be the metadata
//     device of pending(d.Path), the store an interrupted mkfs of this device was making (asked
//     only then: it reads the state directory); anything else
//     (in use, this cluster's store or another store's metadata device) is a Skip;
//   - anything else is returned as it is: an existing store keeps its metadata where it is.
func (in Inspector) WithMetadataDevice(d Decision, sel Selection, pending func(path string) string) Decision {
	skip := func(format string, args ...any) Decision {
		d.Action, d.Reason, d.Force = Skip, fmt.Sprintf(format, args...), false
		return d
	}
	switch {
	case d.Action == Mount && d.MetaOnSeparateDevice:
		for _, m := range sortedValues(sel.MetadataDevices) {
			if md := in.Inspect(m, Selection{}); md.MetadataDeviceOf == d.StoreUUID {
				d.MetadataDevice = m
				return d
			}
		}
		return skip("carries store %s, whose metadata is on a separate metadata device that none of this node's metadata devices (%v) is: "+
			"attach that device and name it in spec.devices.metadataDevices", d.StoreUUID, sortedValues(sel.MetadataDevices))
	case d.Action == Mkfs && sel.MetadataDevices[d.Path] != "":
		m := sel.MetadataDevices[d.Path]
		md := in.Inspect(m, Selection{AllowWipe: sel.AllowWipe, MinSize: MinMetadataDeviceSize})
		switch {
		case md.Action == Mkfs:
			d.Force = d.Force || md.Force
			if md.Force {
				d.Reason = joinReasons(d.Reason, "metadata device "+m+" "+md.Reason)
			}
		case md.Action == Skip && md.MetadataDeviceOf != "" && md.MetadataDeviceOf == pending(d.Path):
			d.Force = true // this device's own interrupted mkfs labeled it
		case md.Action == Mount:
			return skip("its metadata device %s carries store %s of this cluster: it is not wiped", m, md.StoreUUID)
		default:
			return skip("its metadata device %s %s", m, md.Reason)
		}
		d.MetadataDevice = m
	}
	return d
}

func joinReasons(a, b string) string {
	if a == "" {
		return b
	}
	return a + "; " + b
}

// sortedValues returns the metadata devices of m, sorted.
func sortedValues(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for _, v := range m {
		out = append(out, v)
	}
	sort.Strings(out)
	return out
}
