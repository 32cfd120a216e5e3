package service

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// serve runs newHTTPServer on a loopback port until the test ends.
func serve(t *testing.T, h http.Handler, timeouts HTTPTimeouts) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := newHTTPServer("", h, timeouts)
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	return l.Addr().String()
}

// An Update may keep a request waiting for UPDATE_TIMEOUT (twice, for a
// purchase with a parent): the write timeout must not cut that answer off.
func TestWriteTimeoutOutlastsUpdates(t *testing.T) {
	const update = 300 * time.Millisecond
	addr := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(2 * update) // the scenario: a handler waiting for two Updates
		_, _ = io.WriteString(w, "answer")
	}), timeoutsFor(update))
	resp, err := http.Get("http://" + addr + "/")
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	assert.Equal(t, "answer", string(body))
}

// A client that never finishes its headers is disconnected after the
// read-header timeout (slowloris), and an idle keep-alive connection after
// the idle timeout.
func TestSlowAndIdleClientsAreDisconnected(t *testing.T) {
	timeouts := HTTPTimeouts{ReadHeader: 200 * time.Millisecond, Read: time.Second, Write: time.Second, Idle: 300 * time.Millisecond}
	addr := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "ok") }), timeouts)

	slow, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer slow.Close()
	_, err = io.WriteString(slow, "GET / HTTP/1.1\r\nHost: x\r\n") // and never the blank line
	require.NoError(t, err)
	started := time.Now()
	require.NoError(t, slow.SetReadDeadline(time.Now().Add(5*time.Second)))
	_, _ = io.ReadAll(slow) // returns when the server closes the connection
	assert.Less(t, time.Since(started), 3*time.Second, "closed by the read-header timeout, not by our deadline")

	idle, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer idle.Close()
	_, err = io.WriteString(idle, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	require.NoError(t, err)
	r := bufio.NewReader(idle)
	resp, err := http.ReadResponse(r, nil)
	require.NoError(t, err)
	_, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	started = time.Now()
	require.NoError(t, idle.SetReadDeadline(time.Now().Add(5*time.Second)))
	_, err = r.ReadByte()
	assert.ErrorIs(t, err, io.EOF, "the server closed the idle connection")
	assert.Less(t, time.Since(started), 3*time.Second)
}

func TestTimeoutsFollowUpdateTimeout(t *testing.T) {
	for _, update := range []time.Duration{time.Second, 30 * time.Second, 2 * time.Minute} {
		tm := timeoutsFor(update)
		assert.Greater(t, tm.Write, 2*update, "a purchase may wait for two Updates")
		assert.Positive(t, tm.Read)
		assert.Positive(t, tm.ReadHeader)
		assert.Positive(t, tm.Idle)
	}
}

// The dev command prints its URLs only once the API accepts connections:
// serving waits for a listener bound later, and gives up when ctx ends.
func TestServingWaitsForTheListener(t *testing.T) {
	probe, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := probe.Addr().String()
	probe.Close()
	bound := make(chan net.Listener, 1)
	go func() {
		time.Sleep(150 * time.Millisecond) // the API's goroutine, late
		l, err := net.Listen("tcp", addr)
		if err != nil {
			t.Error(err)
		}
		bound <- l
	}()
	start := time.Now()
	if !serving(context.Background(), addr) {
		t.Fatal("serving gave up without a deadline")
	}
	l := <-bound
	defer l.Close()
	if waited := time.Since(start); waited < 100*time.Millisecond {
		t.Errorf("serving answered after %s, before the listener was bound", waited)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	l.Close()
	if serving(ctx, addr) {
		t.Error("nothing listens, yet serving said so")
	}
}
