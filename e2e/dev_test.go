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
	d := startDev(t)
	cmd, exited, stdout, stderr := d.cmd, d.exited, &d.stdout, &d.stderr
	httpAddr, temporalAddr, uiPort, mailUIPort, dataDir := d.httpAddr, d.temporalAddr, d.uiPort, d.mailUIPort, d.dataDir

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
	assert.True(t, refuses(temporalAddr), "the Temporal dev server it started is stopped too")
	assert.True(t, refuses("127.0.0.1:"+mailUIPort), "the Mailpit it started is stopped too")
}

// devRun is a `fulfillment dev` started by startDev on free ports.
type devRun struct {
	cmd                                        *exec.Cmd
	exited                                     chan error
	stdout, stderr                             testenv.SyncBuffer
	httpAddr, temporalAddr, uiPort, mailUIPort string
	dataDir                                    string
}

// startDev starts `fulfillment dev` with its own database, ports and data
// directory and waits for its welcome text.
func startDev(t *testing.T) *devRun {
	t.Helper()
	dbURL := fmt.Sprintf("postgres://postgres@127.0.0.1:5432/fulfillment_dev_%s?sslmode=disable", strings.ReplaceAll(uuid.NewString()[:8], "-", ""))
	t.Cleanup(func() { _ = store.DropDatabase(t.Context(), dbURL) })
	d := &devRun{httpAddr: testenv.FreeAddress(), temporalAddr: testenv.FreeAddress(), dataDir: t.TempDir(), exited: make(chan error, 1)}
	_, d.uiPort, _ = net.SplitHostPort(testenv.FreeAddress())
	_, d.mailUIPort, _ = net.SplitHostPort(testenv.FreeAddress())
	_, mailSMTPPort, _ := net.SplitHostPort(testenv.FreeAddress())

	d.cmd = exec.Command(testenv.Binary(t), "dev")
	d.cmd.Env = append(os.Environ(), "DATABASE_URL="+dbURL, "HTTP_ADDR="+d.httpAddr, "TEMPORAL_ADDRESS="+d.temporalAddr,
		"TEMPORAL_UI_PORT="+d.uiPort, "DATA_DIR="+d.dataDir, "TEMPORAL_CLI="+testenv.TemporalCLI(), "SECRET_KEY=",
		"SMTP_URL=", "MAILPIT="+testenv.MailpitBinary(), "MAILPIT_UI_PORT="+d.mailUIPort, "MAILPIT_SMTP_PORT="+mailSMTPPort)
	d.cmd.Stdout, d.cmd.Stderr = &d.stdout, &d.stderr
	d.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	require.NoError(t, d.cmd.Start())
	go func() { d.exited <- d.cmd.Wait() }()
	t.Cleanup(func() {
		_ = d.cmd.Process.Kill()
		if t.Failed() {
			t.Logf("stderr:\n%s", d.stderr.String())
		}
	})
	testenv.WaitFor(t, 90*time.Second, "the welcome text", func() bool { return strings.Contains(d.stdout.String(), "Ctrl-C stops everything") })
	return d
}

// refuses reports whether nothing listens at addr any more.
func refuses(addr string) bool {
	conn, err := net.DialTimeout("tcp", addr, time.Second)
	if err == nil {
		conn.Close()
	}
	return err != nil
}

// A `fulfillment dev` killed without a chance to clean up (SIGKILL, an OOM
// kill, a closed terminal's hard kill) still takes its Temporal dev server
// and Mailpit with it: nothing is left holding the ports for the next
// `make run`.
func TestDevCommandKilledStopsItsServers(t *testing.T) {
	t.Parallel()
	d := startDev(t)
	require.True(t, !refuses(d.temporalAddr) && !refuses("127.0.0.1:"+d.mailUIPort), "both servers answer before the kill")
	children := childrenOf(t, d.cmd.Process.Pid)
	require.Len(t, children, 2, "the Temporal dev server and Mailpit")
	t.Cleanup(func() { // when this fails, leave no orphans behind
		for _, pid := range children {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	})
	require.NoError(t, d.cmd.Process.Kill())
	<-d.exited
	testenv.WaitFor(t, 30*time.Second, "the Temporal dev server and Mailpit to stop after their parent was killed", func() bool {
		return refuses(d.temporalAddr) && refuses("127.0.0.1:"+d.mailUIPort)
	})
}

// childrenOf lists the processes whose parent is pid (from /proc).
func childrenOf(t *testing.T, pid int) []int {
	t.Helper()
	stats, err := filepath.Glob("/proc/[0-9]*/stat")
	require.NoError(t, err)
	var children []int
	for _, f := range stats {
		raw, err := os.ReadFile(f)
		if err != nil {
			continue // it ended meanwhile
		}
		// pid (comm) state ppid …: comm may hold spaces, so read after its ')'.
		var child, ppid int
		var state string
		fields := string(raw[strings.LastIndexByte(string(raw), ')')+1:])
		if _, err := fmt.Sscan(fields, &state, &ppid); err != nil || ppid != pid {
			continue
		}
		_, _ = fmt.Sscan(strings.TrimPrefix(filepath.Dir(f), "/proc/"), &child)
		children = append(children, child)
	}
	return children
}
