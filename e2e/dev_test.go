package e2e

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/partnerhub/fulfillment/store"
	"github.com/partnerhub/fulfillment/testenv"
)

// `fulfillment dev` (what `make run` runs) starts its own Temporal dev server
// with the UI, creates and migrates the database, loads the demo seed, prints
// the URLs and demo keys, serves a demo purchase, and stops everything on
// Ctrl-C (SIGINT), including the Temporal server it started.
func TestDevCommand(t *testing.T) {
	t.Parallel()
	dbURL := fmt.Sprintf("postgres://postgres@127.0.0.1:5432/fulfillment_dev_%s?sslmode=disable", strings.ReplaceAll(uuid.NewString()[:8], "-", ""))
	t.Cleanup(func() { _ = store.DropDatabase(t.Context(), dbURL) })
	httpAddr, temporalAddr := testenv.FreeAddress(), testenv.FreeAddress()
	_, uiPort, _ := net.SplitHostPort(testenv.FreeAddress())
	_, mailUIPort, _ := net.SplitHostPort(testenv.FreeAddress())
	_, mailSMTPPort, _ := net.SplitHostPort(testenv.FreeAddress())
	dataDir := t.TempDir()

	cmd := exec.Command(testenv.Binary(t), "dev")
	cmd.Env = append(os.Environ(), "DATABASE_URL="+dbURL, "HTTP_ADDR="+httpAddr, "TEMPORAL_ADDRESS="+temporalAddr,
		"TEMPORAL_UI_PORT="+uiPort, "DATA_DIR="+dataDir, "TEMPORAL_CLI="+testenv.TemporalCLI(), "SECRET_KEY=",
		"SMTP_URL=", "MAILPIT="+testenv.MailpitBinary(), "MAILPIT_UI_PORT="+mailUIPort, "MAILPIT_SMTP_PORT="+mailSMTPPort)
	var stdout, stderr testenv.SyncBuffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	require.NoError(t, cmd.Start())
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		if t.Failed() {
			t.Logf("stderr:\n%s", stderr.String())
		}
	})

	testenv.WaitFor(t, 90*time.Second, "the welcome text", func() bool { return strings.Contains(stdout.String(), "Ctrl-C stops everything") })
	out := stdout.String()
	assert.Contains(t, out, "http://"+httpAddr)
	assert.Contains(t, out, "Temporal UI:  http://127.0.0.1:"+uiPort)
	assert.Contains(t, out, "demo_fabrikam_admin_alice_key")
	assert.Contains(t, out, "Portal:       http://"+httpAddr+"/portal/")
	for _, who := range []string{"ann@woodgrove.example (contact)", "alice@fabrikam.example (agent)", "bob@fabrikam.example (agent)"} {
		assert.Regexp(t, regexp.QuoteMeta(who)+` +http://`+regexp.QuoteMeta(httpAddr)+`/portal/sign-in/[A-Za-z0-9_-]{43}\n`, out, "a demo sign-in link")
	}
	// The contact's printed link signs in once.
	link := regexp.MustCompile(`ann@woodgrove\.example \(contact\) +(\S+)`).FindStringSubmatch(out)
	require.NotNil(t, link, out)
	for i, want := range []int{http.StatusSeeOther, http.StatusGone} {
		jar, _ := cookiejar.New(nil)
		browser := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		page, err := browser.Get(link[1])
		require.NoError(t, err)
		body, _ := io.ReadAll(page.Body)
		page.Body.Close()
		csrf := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindStringSubmatch(string(body))
		require.NotNil(t, csrf, string(body))
		resp, err := browser.PostForm(link[1], url.Values{"csrf": {csrf[1]}})
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, want, resp.StatusCode, "use %d of the demo link", i+1)
	}
	assert.Contains(t, out, "Mail inbox:   http://127.0.0.1:"+mailUIPort)
	assert.Contains(t, stderr.String(), "SECRET_KEY not set", "the dev key is announced")
	_, err := os.Stat(filepath.Join(dataDir, "temporal.db"))
	assert.NoError(t, err, "Temporal keeps its state in DATA_DIR")

	ui, err := http.Get("http://127.0.0.1:" + uiPort)
	require.NoError(t, err, "the Temporal UI answers")
	ui.Body.Close()

	req, _ := http.NewRequest(http.MethodPost, "http://"+httpAddr+"/v1/subscriptions", strings.NewReader(
		`{"customer_id":"woodgrove","offer_id":"contoso-analytics","plan_id":"std-annual","quantity":5,"customer_contact_email":"ann@woodgrove.example"}`))
	req.Header.Set("Authorization", "Bearer demo_fabrikam_admin_alice_key")
	req.Header.Set("Idempotency-Key", uuid.NewString())
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusCreated, resp.StatusCode, "a demo purchase")
	inbox := &testenv.Mailpit{APIURL: "http://127.0.0.1:" + mailUIPort}
	inbox.WaitMessages(t, 30*time.Second, "the welcome and order emails in the dev inbox",
		func(ms []testenv.MailSummary) bool { return len(ms) >= 2 })

	require.NoError(t, cmd.Process.Signal(os.Interrupt))
	select {
	case err := <-exited:
		assert.NoError(t, err, "Ctrl-C is a clean exit")
	case <-time.After(30 * time.Second):
		t.Fatal("fulfillment dev did not stop on Ctrl-C")
	}
	conn, err := net.DialTimeout("tcp", temporalAddr, time.Second)
	if err == nil {
		conn.Close()
	}
	assert.Error(t, err, "the Temporal dev server it started is stopped too")
	conn, err = net.DialTimeout("tcp", "127.0.0.1:"+mailUIPort, time.Second)
	if err == nil {
		conn.Close()
	}
	assert.Error(t, err, "the Mailpit it started is stopped too")
}
