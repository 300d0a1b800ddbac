package nodepb

// Limits of the node API that both ends configure: the server enforces them and the client
// (node-daemon/client) dials with them, so they live beside the API they bound. MaxMessageSize
// leaves room for framing around MaxIOSize bytes of data.
const (
	// MaxIOSize bounds the data of one read or write request.
	MaxIOSize = 16 << 20
	// MaxMessageSize is the largest gRPC message either side accepts or sends.
	MaxMessageSize = MaxIOSize + 1<<20
	// StreamChunkSize is the data size of each message of a streamed read.
	StreamChunkSize = 1 << 20
	// StreamWindow and ConnWindow are the HTTP/2 flow-control windows both sides use.
	StreamWindow = 32 << 20
	ConnWindow   = 64 << 20
	// SocketBuffer is the size of gRPC's read and write buffers on both sides.
	SocketBuffer = 1 << 20
	// MaxOps bounds the ops of one transaction.
	MaxOps = 4096
	// DefaultListLimit and MaxListLimit bound ListObjects pages.
	DefaultListLimit = 1000
	MaxListLimit     = 10000
)
