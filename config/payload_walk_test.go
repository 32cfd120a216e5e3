package config

import (
	"context"
	"log/slog"
	"os"
	"testing"

	"github.com/stretchr/testify/require"
	commonpb "go.temporal.io/api/common/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/api/proxy"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"google.golang.org/protobuf/encoding/protojson"
)

// The SDK accepts external storage without a driver (it panics on options it
// refuses), and the service's clients get it.
func TestClientsWalkPayloadsOneAtATime(t *testing.T) {
	opts, err := Config{TemporalAddress: "127.0.0.1:1", TemporalNamespace: "default"}.TemporalOptions(slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	require.Equal(t, 1, opts.ExternalStorage.Concurrency.MaxOperationsPerMessage)
	require.Empty(t, opts.ExternalStorage.Drivers, "no payload leaves the history")
	c, err := client.NewLazyClient(opts)
	require.NoError(t, err)
	c.Close()
}

// BenchmarkPayloadWalk walks a recorded purchase→active history as the SDK
// does for each workflow task, on a fresh goroutine as the SDK's task
// processing runs: sdk is its default (map-valued payloads visited on
// goroutines of their own, up to 8), service is PayloadWalk.
func BenchmarkPayloadWalk(b *testing.B) {
	raw, err := os.ReadFile("../workflows/testdata/histories/v3_purchase_to_active_run1.json")
	require.NoError(b, err)
	var h historypb.History
	require.NoError(b, protojson.Unmarshal(raw, &h))
	task := &workflowservice.PollWorkflowTaskQueueResponse{History: &h}
	visit := func(_ *proxy.VisitPayloadsContext, p []*commonpb.Payload) ([]*commonpb.Payload, error) { return p, nil }
	for _, c := range []struct {
		name  string
		limit int
	}{{"sdk", 8}, {"service", PayloadWalk.Concurrency.MaxOperationsPerMessage}} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			done := make(chan error)
			for b.Loop() {
				go func() {
					done <- proxy.VisitPayloads(context.Background(), task, proxy.VisitPayloadsOptions{
						Visitor: visit, SkipSearchAttributes: true, ConcurrencyLimit: c.limit,
					})
				}()
				if err := <-done; err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
