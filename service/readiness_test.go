package service

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

// An hour-long outage: checks keep coming every 2 s at most, so a dependency
// that comes back is seen quickly, while log lines thin out to one a minute.
func TestRetryChecksOftenLogsRarely(t *testing.T) {
	var r retry
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	end := now.Add(time.Hour)
	checks, logs := 0, 0
	var lastLog time.Time
	for now.Before(end) {
		delay, log := r.failed(now)
		checks++
		assert.LessOrEqual(t, delay, retryMaxCheck)
		if log {
			if logs > 0 {
				assert.GreaterOrEqual(t, now.Sub(lastLog), retryFirstLog, "never two log lines within a second")
			}
			logs, lastLog = logs+1, now
		}
		now = now.Add(delay)
	}
	assert.Greater(t, checks, 1800, "checked at least every 2 s")
	assert.LessOrEqual(t, logs, 70, "about one line a minute once the backoff is spent")
	assert.Greater(t, logs, 55, "but the outage stays visible in the logs")
}

func TestWaitUntil(t *testing.T) {
	var buf bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&buf, nil))
	calls := 0
	ok := waitUntil(context.Background(), logger, "PostgreSQL", func(context.Context) error {
		calls++
		if calls < 3 {
			return errors.New("connection refused")
		}
		return nil
	})
	assert.True(t, ok)
	assert.Equal(t, 3, calls)
	assert.Contains(t, buf.String(), `"msg":"waiting for PostgreSQL"`)
	assert.Contains(t, buf.String(), `"msg":"PostgreSQL reachable"`)

	// A stop signal ends the wait at once.
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan bool)
	go func() {
		done <- waitUntil(ctx, slog.New(slog.DiscardHandler), "Temporal", func(context.Context) error { return errors.New("down") })
	}()
	cancel()
	assert.False(t, <-done)
}
