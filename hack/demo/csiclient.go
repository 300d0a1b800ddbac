package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// csiCallTimeout bounds one CSI call; CreateVolume and DeleteVolume wait for the operator and
// the node daemon, NodeStageVolume formats the device on first use.
const csiCallTimeout = 2 * time.Minute

// dialUnix opens a gRPC connection to a plugin's unix socket (path, not URL), as kubelet and the
// CSI sidecars do: no TLS, the socket's file mode is the access control.
func dialUnix(path string) (*grpc.ClientConn, error) {
	conn, err := grpc.NewClient("unix://"+path, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", path, err)
	}
	return conn, nil
}

// callLog appends every CSI call the demo makes, request and response in JSON, to one file.
type callLog struct{ path string }

func (l callLog) write(method string, req, resp proto.Message, err error, took time.Duration) {
	f, ferr := os.OpenFile(l.path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if ferr != nil {
		return
	}
	defer f.Close()
	fmt.Fprintf(f, "--- %s: %s (%s)\nrequest:  %s\n", time.Now().Format(time.RFC3339), method, took.Round(time.Millisecond), protojson.Format(req))
	if err != nil {
		fmt.Fprintf(f, "error:    %s\n", err)
		return
	}
	fmt.Fprintf(f, "response: %s\n", protojson.Format(resp))
}

// csiCall makes one CSI call with a timeout and logs it. Its error names the method, the gRPC
// code and the plugin's message.
func csiCall[Req, Resp proto.Message](ctx context.Context, log callLog, method string, req Req,
	fn func(context.Context, Req, ...grpc.CallOption) (Resp, error)) (Resp, error) {
	ctx, cancel := context.WithTimeout(ctx, csiCallTimeout)
	defer cancel()
	start := time.Now()
	resp, err := fn(ctx, req)
	log.write(method, req, resp, err, time.Since(start))
	if err != nil {
		return resp, &csiError{method: method, st: status.Convert(err)}
	}
	return resp, nil
}

// csiError is a failed CSI call: the method and the plugin's gRPC status.
type csiError struct {
	method string
	st     *status.Status
}

func (e *csiError) Error() string {
	return fmt.Sprintf("%s: %s: %s", e.method, e.st.Code(), e.st.Message())
}

// GRPCStatus lets status.Code see the plugin's code through the error.
func (e *csiError) GRPCStatus() *status.Status { return e.st }

// retryAborted repeats call while the plugin answers Aborted (another call on the same volume is
// in flight, as after an interrupted one), for up to a minute, as kubelet and the sidecars retry.
func retryAborted(ctx context.Context, call func(context.Context) error) error {
	deadline := time.Now().Add(time.Minute)
	for {
		err := call(ctx)
		if status.Code(err) != codes.Aborted || time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return errors.Join(err, ctx.Err())
		case <-time.After(time.Second):
		}
	}
}
