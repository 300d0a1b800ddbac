package client

import (
	"context"
	"errors"
	"fmt"
	"io"

	nodepb "github.com/cobaltstore/cobalt/node-daemon/proto"
)

// WriteChunkSize is the data size of each message WriteFrom sends.
const WriteChunkSize = 1 << 20

// WriteFrom streams r into volume ref starting at offset and returns the number of bytes written;
// every byte counted is durable when it returns nil.
func (c *Client) WriteFrom(ctx context.Context, ref *nodepb.VolumeRef, offset int64, r io.Reader) (int64, error) {
	stream, err := c.Volumes.WriteStream(ctx)
	if err != nil {
		return 0, fmt.Errorf("client: open write stream: %w", err)
	}
	buf := make([]byte, WriteChunkSize)
	pos := offset
	for {
		n, rerr := io.ReadFull(r, buf)
		if n > 0 {
			if err := stream.Send(&nodepb.WriteRequest{Ref: ref, Offset: pos, Data: buf[:n]}); err != nil {
				// The server's reason arrives with CloseAndRecv.
				_, serr := stream.CloseAndRecv()
				return 0, fmt.Errorf("client: write at %d: %w", pos, errors.Join(serr, err))
			}
			pos += int64(n)
		}
		if errors.Is(rerr, io.EOF) || errors.Is(rerr, io.ErrUnexpectedEOF) {
			break
		}
		if rerr != nil {
			_ = stream.CloseSend()
			return 0, fmt.Errorf("client: read input: %w", rerr)
		}
	}
	resp, err := stream.CloseAndRecv()
	if err != nil {
		return 0, fmt.Errorf("client: write stream: %w", err)
	}
	return resp.GetBytesWritten(), nil
}

// ReadTo streams [offset, offset+length) of volume ref into w and returns the bytes copied.
func (c *Client) ReadTo(ctx context.Context, ref *nodepb.VolumeRef, offset, length int64, w io.Writer) (int64, error) {
	stream, err := c.Volumes.ReadStream(ctx, &nodepb.ReadRequest{Ref: ref, Offset: offset, Length: length})
	if err != nil {
		return 0, fmt.Errorf("client: open read stream: %w", err)
	}
	var total int64
	for {
		resp, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			if total != length {
				return total, fmt.Errorf("client: read stream ended after %d of %d bytes", total, length)
			}
			return total, nil
		}
		if err != nil {
			return total, fmt.Errorf("client: read at %d: %w", offset+total, err)
		}
		if resp.GetOffset() != offset+total {
			return total, fmt.Errorf("client: read stream sent offset %d, expected %d", resp.GetOffset(), offset+total)
		}
		n, err := w.Write(resp.GetData())
		total += int64(n)
		if err != nil {
			return total, fmt.Errorf("client: write output: %w", err)
		}
	}
}
