package config_test

import (
	"context"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/partnerhub/fulfillment/config"
	"github.com/partnerhub/fulfillment/testenv"
	"github.com/partnerhub/fulfillment/workflows"
)

// The dev server this project starts keeps its search attribute types and
// namespace in memory: starting workflows with the ops search attributes
// does not read them from SQLite each time (the CLI's default does, and
// with it the control case below), and the attributes still work, at once,
// for the visibility queries ops run.
func TestDevServerCachesSearchAttributes(t *testing.T) {
	const starts = 20
	reads := func(t *testing.T, overrides ...string) float64 {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		address := testenv.FreeAddress()
		_, metricsPort, _ := strings.Cut(testenv.FreeAddress(), ":")
		srv, err := testsuite.StartDevServer(ctx, testsuite.DevServerOptions{
			ExistingPath: testenv.TemporalCLI(), ClientOptions: &client.Options{HostPort: address, Namespace: "default"},
			LogLevel: "error", Stdout: io.Discard, Stderr: io.Discard,
			ExtraArgs: append(config.DevServerFlags(overrides...), "--metrics-port", metricsPort),
		})
		require.NoError(t, err)
		defer func() { _ = srv.Stop() }()
		c := srv.Client()
		metrics := "http://127.0.0.1:" + metricsPort + "/metrics"
		// The server publishes its counters about once a second: a reading
		// counts once two of them 1.5 s apart agree.
		searchReads := func() float64 {
			read := func() float64 {
				m := testenv.EngineCounters(ctx, metrics)
				require.NotNil(t, m, "the dev server's metrics at %s", metrics)
				return m["persistence GetCurrentClusterMetadata"] + m["persistence GetNamespace"]
			}
			last := read()
			for {
				select {
				case <-ctx.Done():
					require.NoError(t, ctx.Err())
				case <-time.After(1500 * time.Millisecond):
				}
				now := read()
				if now == last {
					return now
				}
				last = now
			}
		}

		partner := "probe-" + uuid.NewString()[:8]
		before := searchReads()
		for i := range starts {
			_, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
				ID: fmt.Sprintf("%s-%d", partner, i), TaskQueue: "no-worker-" + partner, // started only: no task runs
				TypedSearchAttributes: temporal.NewSearchAttributes(
					temporal.NewSearchAttributeKeyKeyword(workflows.SearchPartnerID).ValueSet(partner),
					temporal.NewSearchAttributeKeyKeyword(workflows.SearchCustomerID).ValueSet("c"),
					temporal.NewSearchAttributeKeyKeyword(workflows.SearchOfferID).ValueSet("o"),
					temporal.NewSearchAttributeKeyKeyword(workflows.SearchSubscriptionStatus).ValueSet("pending_fulfillment"),
				),
			}, "SubscriptionWorkflow")
			require.NoError(t, err)
		}
		query := fmt.Sprintf("%s = '%s' AND %s = 'pending_fulfillment'", workflows.SearchPartnerID, partner, workflows.SearchSubscriptionStatus)
		testenv.WaitFor(t, 30*time.Second, "every started workflow found by its search attributes", func() bool {
			n, err := c.CountWorkflow(ctx, &workflowservice.CountWorkflowExecutionsRequest{Namespace: "default", Query: query})
			return err == nil && n.GetCount() == starts
		})
		return searchReads() - before
	}

	cached := reads(t)
	forced := reads(t, "system.forceSearchAttributesCacheRefreshOnRead=true")
	t.Logf("search attribute and namespace reads from SQLite for %d starts and their visibility records: %v with the project's config, %v with the CLI's default", starts, cached, forced)
	assert.GreaterOrEqual(t, forced, float64(starts), "control: the CLI's default reads them for every start")
	assert.Less(t, cached, float64(starts)/4, "the project's dev server reads them from its cache")
}
