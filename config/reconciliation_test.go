package config

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestReconciliationSettings(t *testing.T) {
	for _, name := range []string{"RECONCILE_EVERY", "RECONCILE_PENDING_THRESHOLD", "OPS_API_KEY"} {
		t.Setenv(name, "")
	}
	c, err := FromEnv()
	require.NoError(t, err)
	assert.Equal(t, 24*time.Hour, c.ReconcileEvery)
	assert.Equal(t, 24*time.Hour, c.ReconcilePendingAfter)
	assert.Empty(t, c.OpsAPIKey)

	t.Setenv("RECONCILE_EVERY", "6h")
	t.Setenv("RECONCILE_PENDING_THRESHOLD", "90m")
	t.Setenv("OPS_API_KEY", "ops-secret-value")
	c, err = FromEnv()
	require.NoError(t, err)
	assert.Equal(t, 6*time.Hour, c.ReconcileEvery)
	assert.Equal(t, 90*time.Minute, c.ReconcilePendingAfter)
	assert.NotContains(t, c.Masked(), "ops-secret-value", "the ops key is masked")

	for _, bad := range []string{"0s", "-1h", "daily"} {
		t.Setenv("RECONCILE_EVERY", bad)
		_, err = FromEnv()
		assert.ErrorContains(t, err, "RECONCILE_EVERY", bad)
	}
}
