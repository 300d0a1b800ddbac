package transport_test

import (
	"crypto/tls"
	"io"
	"testing"

	"google.golang.org/grpc/credentials"

	"github.com/cobaltstore/cobalt/node-daemon/transport"
)

// BenchmarkWrite writes over a TLS connection on loopback, with crypto/tls's one system call per
// record and with the records batched, while a reader on the other end reads everything: the CPU
// and time of moving bytes through the node API's transport, without gRPC or devices. B/op is
// not of interest; ns/op and MB/s are, and the socket writes per write (writes/op).
func BenchmarkWrite(b *testing.B) {
	for _, creds := range []struct {
		name string
		new  func(*tls.Config) credentials.TransportCredentials
	}{
		{"tls", credentials.NewTLS},
		{"batched", transport.NewTLS},
	} {
		for _, size := range []int{4 << 10, 1 << 20} {
			b.Run(creds.name+"/"+sizeName(size), func(b *testing.B) {
				client, server, raw := connect(b, creds.new)
				done := make(chan error, 1)
				go func() {
					_, err := io.Copy(io.Discard, server)
					done <- err
				}()
				msg := random(b, size)
				b.SetBytes(int64(size))
				before := raw.writes.Load()
				b.ResetTimer()
				for b.Loop() {
					if _, err := client.Write(msg); err != nil {
						b.Fatal(err)
					}
				}
				b.StopTimer()
				b.ReportMetric(float64(raw.writes.Load()-before)/float64(b.N), "writes/op")
				if err := client.Close(); err != nil {
					b.Fatal(err)
				}
				if err := <-done; err != nil {
					b.Fatalf("reader: %v", err)
				}
			})
		}
	}
}

func sizeName(n int) string {
	if n >= 1<<20 {
		return "1MiB"
	}
	return "4KiB"
}
