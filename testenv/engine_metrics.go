package testenv

import (
	"context"
	"io"
	"net/http"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// EngineCounters reads a Temporal server's request counters from its
// Prometheus endpoint (a dev server's --metrics-port): every RPC each of its
// services served (service_requests, by service and operation: what the
// clients and the engine's own services asked of it) and every persistence
// call (persistence_requests, by operation). Keys are "frontend
// RespondWorkflowTaskCompleted", "history RecordWorkflowTaskStarted",
// "persistence UpdateWorkflowExecution", summed over the other labels. Nil
// when the endpoint does not answer.
func EngineCounters(ctx context.Context, url string) map[string]float64 {
	if url == "" {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	return ParseEngineCounters(resp.Body)
}

// ParseEngineCounters is EngineCounters over Prometheus text.
func ParseEngineCounters(r io.Reader) map[string]float64 {
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(r)
	if err != nil {
		return nil
	}
	out := map[string]float64{}
	for name, by := range map[string]string{"service_requests": "service_name", "persistence_requests": ""} {
		f := families[name]
		if f == nil {
			continue
		}
		for _, m := range f.GetMetric() {
			service, operation := "persistence", ""
			for _, l := range m.GetLabel() {
				switch l.GetName() {
				case "operation":
					operation = l.GetValue()
				case by:
					service = l.GetValue()
				}
			}
			v := m.GetCounter().GetValue()
			if m.GetCounter() == nil {
				v = m.GetUntyped().GetValue()
			}
			out[service+" "+operation] += v
		}
	}
	return out
}
