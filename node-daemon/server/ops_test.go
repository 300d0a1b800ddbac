package server

import (
	"errors"
	"reflect"
	"testing"

	"github.com/cobaltstore/cobalt/node-daemon/objstore"
	nodepb "github.com/cobaltstore/cobalt/node-daemon/proto"
)

// TestDecodeOp checks that every protobuf op kind decodes to the objstore op with the same fields,
// that a missing ref decodes to empty names (which Op.Validate refuses), and that an op without a
// kind is refused.
func TestDecodeOp(t *testing.T) {
	ref := &nodepb.ObjectRef{Collection: "c", Object: "o"}
	data := []byte("data")
	tests := []struct {
		name string
		in   *nodepb.Op
		want objstore.Op
	}{
		{"create_collection", &nodepb.Op{Op: &nodepb.Op_CreateCollection{CreateCollection: &nodepb.CreateCollectionOp{Collection: "c"}}}, objstore.CreateCollection("c")},
		{"remove_collection", &nodepb.Op{Op: &nodepb.Op_RemoveCollection{RemoveCollection: &nodepb.RemoveCollectionOp{Collection: "c"}}}, objstore.RemoveCollection("c")},
		{"touch", &nodepb.Op{Op: &nodepb.Op_Touch{Touch: &nodepb.TouchOp{Ref: ref}}}, objstore.Touch("c", "o")},
		{"write", &nodepb.Op{Op: &nodepb.Op_Write{Write: &nodepb.WriteOp{Ref: ref, Offset: 7, Data: data}}}, objstore.WriteOwned("c", "o", 7, data)},
		{"zero", &nodepb.Op{Op: &nodepb.Op_Zero{Zero: &nodepb.ZeroOp{Ref: ref, Offset: 7, Length: 9}}}, objstore.Zero("c", "o", 7, 9)},
		{"truncate", &nodepb.Op{Op: &nodepb.Op_Truncate{Truncate: &nodepb.TruncateOp{Ref: ref, Size: 11}}}, objstore.Truncate("c", "o", 11)},
		{"remove", &nodepb.Op{Op: &nodepb.Op_Remove{Remove: &nodepb.RemoveOp{Ref: ref}}}, objstore.Remove("c", "o")},
		{"set_attr", &nodepb.Op{Op: &nodepb.Op_SetAttr{SetAttr: &nodepb.SetAttrOp{Ref: ref, Name: "a", Value: data}}}, objstore.SetAttr("c", "o", "a", data)},
		{"rm_attr", &nodepb.Op{Op: &nodepb.Op_RmAttr{RmAttr: &nodepb.RmAttrOp{Ref: ref, Name: "a"}}}, objstore.RmAttr("c", "o", "a")},
		{"omap_set_keys", &nodepb.Op{Op: &nodepb.Op_OmapSetKeys{OmapSetKeys: &nodepb.OmapSetKeysOp{Ref: ref, Entries: map[string][]byte{"k": data}}}},
			objstore.OmapSetKeys("c", "o", map[string][]byte{"k": data})},
		{"omap_rm_keys", &nodepb.Op{Op: &nodepb.Op_OmapRmKeys{OmapRmKeys: &nodepb.OmapRmKeysOp{Ref: ref, Keys: []string{"k"}}}}, objstore.OmapRmKeys("c", "o", []string{"k"})},
		{"omap_clear", &nodepb.Op{Op: &nodepb.Op_OmapClear{OmapClear: &nodepb.OmapClearOp{Ref: ref}}}, objstore.OmapClear("c", "o")},
		{"omap_set_header", &nodepb.Op{Op: &nodepb.Op_OmapSetHeader{OmapSetHeader: &nodepb.OmapSetHeaderOp{Ref: ref, Header: data}}}, objstore.OmapSetHeader("c", "o", data)},
		{"clone", &nodepb.Op{Op: &nodepb.Op_Clone{Clone: &nodepb.CloneOp{Source: ref, Dest: "d"}}}, objstore.Clone("c", "o", "d")},
		{"rename", &nodepb.Op{Op: &nodepb.Op_Rename{Rename: &nodepb.RenameOp{Source: ref, Dest: "d"}}}, objstore.Rename("c", "o", "d")},
		{"write without ref", &nodepb.Op{Op: &nodepb.Op_Write{Write: &nodepb.WriteOp{Offset: 1}}}, objstore.WriteOwned("", "", 1, nil)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := decodeOp(tt.in)
			if err != nil {
				t.Fatalf("decodeOp: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("decodeOp = %+v, want %+v", got, tt.want)
			}
			if tt.name != "write without ref" && got.Kind.String() != tt.name {
				t.Fatalf("kind %s, want %s (the API's name)", got.Kind, tt.name)
			}
		})
	}
	for _, in := range []*nodepb.Op{nil, {}} {
		if _, err := decodeOp(in); !errors.Is(err, objstore.ErrInvalid) {
			t.Errorf("decodeOp(%v) = %v, want ErrInvalid", in, err)
		}
	}
}
