package server

import (
	"context"

	nodepb "github.com/cobaltstore/cobalt/node-daemon/proto"
)

// storeService implements nodepb.StoreServiceServer.
type storeService struct {
	nodepb.UnimplementedStoreServiceServer
	stores *Stores
}

func (s *storeService) ListStores(ctx context.Context, _ *nodepb.ListStoresRequest) (*nodepb.ListStoresResponse, error) {
	resp := &nodepb.ListStoresResponse{}
	for _, m := range s.stores.List() {
		fs, err := m.Store.Statfs(ctx)
		if err != nil {
			return nil, toStatus(err)
		}
		resp.Stores = append(resp.Stores, &nodepb.StoreInfo{
			Uuid:           m.Store.UUID(),
			DevicePath:     m.DevicePath,
			TotalBytes:     fs.Total,
			UsedBytes:      fs.Used,
			AvailableBytes: fs.Available,
			Volumes:        int64(m.Volumes.Count()),
		})
	}
	return resp, nil
}
