package server

import (
	"context"
	"errors"
	"fmt"
	"io"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	nodepb "github.com/cobaltstore/cobalt/node-daemon/proto"
	"github.com/cobaltstore/cobalt/node-daemon/replica"
	"github.com/cobaltstore/cobalt/node-daemon/volume"
)

// volumeService implements nodepb.VolumeServiceServer.
type volumeService struct {
	nodepb.UnimplementedVolumeServiceServer
	stores   *Stores
	inflight *inFlight
	// replicas is the node's fenced replica I/O: a volume is deleted through it, so no replica
	// request runs on a volume being deleted and what it kept of the volume goes too.
	replicas *replica.Node
}

func (s *volumeService) manager(ref *nodepb.VolumeRef) (*volume.Manager, string, error) {
	if ref == nil {
		return nil, "", invalid("ref is missing")
	}
	m, err := s.stores.Get(ref.GetStoreUuid())
	if err != nil {
		return nil, "", toStatus(err)
	}
	if err := volume.ValidateID(ref.GetVolumeId()); err != nil {
		return nil, "", toStatus(err)
	}
	return m.Volumes, ref.GetVolumeId(), nil
}

// guard claims the in-flight slot of a volume for a control operation.
func (s *volumeService) guard(ref *nodepb.VolumeRef, op string) (func(), error) {
	release, err := s.inflight.acquire(ref.GetStoreUuid()+"/"+ref.GetVolumeId(), op)
	return release, toStatus(err)
}

func volumeInfo(storeUUID string, i volume.Info) *nodepb.VolumeInfo {
	return &nodepb.VolumeInfo{
		Ref:             &nodepb.VolumeRef{StoreUuid: storeUUID, VolumeId: i.ID},
		SizeBytes:       i.Size,
		StripeSizeBytes: i.StripeSize,
		AllocatedBytes:  i.Allocated,
		ContentSource:   contentSource(i.Origin),
	}
}

func (s *volumeService) CreateVolume(ctx context.Context, req *nodepb.CreateVolumeRequest) (*nodepb.CreateVolumeResponse, error) {
	m, id, err := s.manager(req.GetRef())
	if err != nil {
		return nil, err
	}
	release, err := s.guard(req.GetRef(), "create")
	if err != nil {
		return nil, err
	}
	defer release()
	var info volume.Info
	if req.GetContentSource() != nil {
		info, err = s.createFrom(ctx, m, id, req)
		if err != nil {
			return nil, err
		}
	} else {
		info, err = m.Create(ctx, id, req.GetSizeBytes(), req.GetStripeSizeBytes())
		if err != nil {
			return nil, toStatus(err)
		}
		if info.Origin != "" { // Create returned an existing volume; it changed nothing
			return nil, status.Error(codes.AlreadyExists, fmt.Sprintf("volume %q exists, made from %s; asked for an empty one", id, info.Origin))
		}
	}
	return &nodepb.CreateVolumeResponse{Volume: volumeInfo(req.GetRef().GetStoreUuid(), info)}, nil
}

func (s *volumeService) DeleteVolume(ctx context.Context, req *nodepb.DeleteVolumeRequest) (*nodepb.DeleteVolumeResponse, error) {
	_, id, err := s.manager(req.GetRef())
	if err != nil {
		return nil, err
	}
	release, err := s.guard(req.GetRef(), "delete")
	if err != nil {
		return nil, err
	}
	defer release()
	if err := s.replicas.Delete(ctx, req.GetRef().GetStoreUuid(), id); err != nil {
		return nil, toStatus(err)
	}
	return &nodepb.DeleteVolumeResponse{}, nil
}

func (s *volumeService) ResizeVolume(ctx context.Context, req *nodepb.ResizeVolumeRequest) (*nodepb.ResizeVolumeResponse, error) {
	m, id, err := s.manager(req.GetRef())
	if err != nil {
		return nil, err
	}
	release, err := s.guard(req.GetRef(), "resize")
	if err != nil {
		return nil, err
	}
	defer release()
	info, err := m.Resize(ctx, id, req.GetSizeBytes())
	if err != nil {
		return nil, toStatus(err)
	}
	return &nodepb.ResizeVolumeResponse{Volume: volumeInfo(req.GetRef().GetStoreUuid(), info)}, nil
}

func (s *volumeService) GetVolume(ctx context.Context, req *nodepb.GetVolumeRequest) (*nodepb.GetVolumeResponse, error) {
	m, id, err := s.manager(req.GetRef())
	if err != nil {
		return nil, err
	}
	info, err := m.Get(ctx, id)
	if err != nil {
		return nil, toStatus(err)
	}
	return &nodepb.GetVolumeResponse{Volume: volumeInfo(req.GetRef().GetStoreUuid(), info)}, nil
}

func (s *volumeService) ListVolumes(ctx context.Context, req *nodepb.ListVolumesRequest) (*nodepb.ListVolumesResponse, error) {
	mounted, err := s.stores.Get(req.GetStoreUuid())
	if err != nil {
		return nil, toStatus(err)
	}
	infos, err := mounted.Volumes.List(ctx)
	if err != nil {
		return nil, toStatus(err)
	}
	resp := &nodepb.ListVolumesResponse{}
	for _, i := range infos {
		resp.Volumes = append(resp.Volumes, volumeInfo(req.GetStoreUuid(), i))
	}
	return resp, nil
}

func (s *volumeService) Write(ctx context.Context, req *nodepb.WriteRequest) (*nodepb.WriteResponse, error) {
	m, id, err := s.manager(req.GetRef())
	if err != nil {
		return nil, err
	}
	if len(req.GetData()) > nodepb.MaxIOSize {
		return nil, invalid(fmt.Sprintf("write of %d bytes exceeds the limit of %d", len(req.GetData()), nodepb.MaxIOSize))
	}
	// The request's data was decoded for this write alone: the store may write from it.
	if err := m.WriteOwned(ctx, id, req.GetOffset(), req.GetData()); err != nil {
		return nil, toStatus(err)
	}
	return &nodepb.WriteResponse{}, nil
}

func (s *volumeService) Read(ctx context.Context, req *nodepb.ReadRequest) (*nodepb.ReadResponse, error) {
	m, id, err := s.manager(req.GetRef())
	if err != nil {
		return nil, err
	}
	if req.GetLength() > nodepb.MaxIOSize {
		return nil, invalid(fmt.Sprintf("read of %d bytes exceeds the limit of %d (use ReadStream)", req.GetLength(), nodepb.MaxIOSize))
	}
	data, err := m.Read(ctx, id, req.GetOffset(), req.GetLength())
	if err != nil {
		return nil, toStatus(err)
	}
	return &nodepb.ReadResponse{Offset: req.GetOffset(), Data: data}, nil
}

func (s *volumeService) Flush(ctx context.Context, req *nodepb.FlushRequest) (*nodepb.FlushResponse, error) {
	m, id, err := s.manager(req.GetRef())
	if err != nil {
		return nil, err
	}
	if err := m.Flush(ctx, id); err != nil {
		return nil, toStatus(err)
	}
	return &nodepb.FlushResponse{}, nil
}

func (s *volumeService) Trim(ctx context.Context, req *nodepb.TrimRequest) (*nodepb.TrimResponse, error) {
	m, id, err := s.manager(req.GetRef())
	if err != nil {
		return nil, err
	}
	if err := m.Trim(ctx, id, req.GetOffset(), req.GetLength()); err != nil {
		return nil, toStatus(err)
	}
	return &nodepb.TrimResponse{}, nil
}

// WriteStream applies each chunk as a write. Chunks must all name the same volume. On error the
// chunks acknowledged so far (bytes_written is not returned then) are durable; the failing chunk
// and the ones after it are not applied.
func (s *volumeService) WriteStream(stream nodepb.VolumeService_WriteStreamServer) error {
	ctx := stream.Context()
	var (
		first   *nodepb.VolumeRef
		written int64
	)
	for {
		req, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return stream.SendAndClose(&nodepb.WriteStreamResponse{BytesWritten: written})
		}
		if err != nil {
			return err
		}
		if first == nil {
			first = req.GetRef()
		} else if req.GetRef().GetStoreUuid() != first.GetStoreUuid() || req.GetRef().GetVolumeId() != first.GetVolumeId() {
			return invalid("every chunk of a write stream must name the same volume")
		}
		if _, err := s.Write(ctx, req); err != nil {
			return err
		}
		written += int64(len(req.GetData()))
	}
}

// ReadStream sends the range in chunks of nodepb.StreamChunkSize.
func (s *volumeService) ReadStream(req *nodepb.ReadRequest, stream nodepb.VolumeService_ReadStreamServer) error {
	m, id, err := s.manager(req.GetRef())
	if err != nil {
		return err
	}
	info, err := m.Get(stream.Context(), id)
	if err != nil {
		return toStatus(err)
	}
	off, length := req.GetOffset(), req.GetLength()
	if off < 0 || length < 0 || off > info.Size || length > info.Size-off {
		return invalid(fmt.Sprintf("range [%d, +%d) is outside volume %q of %d bytes", off, length, id, info.Size))
	}
	for pos := int64(0); pos < length; {
		n := min(int64(nodepb.StreamChunkSize), length-pos)
		data, err := m.Read(stream.Context(), id, off+pos, n)
		if err != nil {
			return toStatus(err)
		}
		if err := stream.Send(&nodepb.ReadResponse{Offset: off + pos, Data: data}); err != nil {
			return err
		}
		pos += n
	}
	return nil
}
