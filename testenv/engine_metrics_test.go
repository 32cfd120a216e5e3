package testenv

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestEngineCountersSumOverOtherLabels(t *testing.T) {
	text := `# HELP service_requests service_requests counter
# TYPE service_requests counter
service_requests{namespace="default",operation="RespondWorkflowTaskCompleted",service_name="frontend"} 40
service_requests{namespace="_unknown_",operation="RespondWorkflowTaskCompleted",service_name="frontend"} 2
service_requests{namespace="default",operation="RespondWorkflowTaskCompleted",service_name="history"} 41
# TYPE persistence_requests counter
persistence_requests{operation="UpdateWorkflowExecution",service_name="history"} 7
# TYPE service_latency histogram
service_latency_bucket{operation="RespondWorkflowTaskCompleted",le="1"} 3
`
	got := ParseEngineCounters(strings.NewReader(text))
	assert.Equal(t, map[string]float64{
		"frontend RespondWorkflowTaskCompleted": 42,
		"history RespondWorkflowTaskCompleted":  41,
		"persistence UpdateWorkflowExecution":   7,
	}, got)
}
