package testenv

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// MailpitBinary is the path of the Mailpit that `make` installs.
func MailpitBinary() string {
	if p := os.Getenv("MAILPIT"); p != "" {
		return p
	}
	return filepath.Join(RepoRoot(), "bin", "mailpit")
}

// Mailpit is a local SMTP server with an HTTP API, on free loopback ports,
// keeping its messages in memory; stopped when the test ends.
type Mailpit struct {
	SMTPAddr string
	APIURL   string
}

// SMTPURL is the SMTP_URL that points at it.
func (m *Mailpit) SMTPURL() string { return "smtp://" + m.SMTPAddr }

// StartMailpit starts a Mailpit for one test; extra are more flags (e.g.
// "--enable-chaos", "--chaos-triggers", "Recipient:550:100").
func StartMailpit(tb testing.TB, extra ...string) *Mailpit {
	tb.Helper()
	if _, err := os.Stat(MailpitBinary()); err != nil {
		tb.Fatalf("mailpit missing at %s (`make test` installs it): %v", MailpitBinary(), err)
	}
	m := &Mailpit{SMTPAddr: FreeAddress()}
	httpAddr := FreeAddress()
	m.APIURL = "http://" + httpAddr
	args := append([]string{"--smtp", m.SMTPAddr, "--listen", httpAddr,
		"--smtp-auth-accept-any", "--smtp-auth-allow-insecure", "--disable-version-check", "--quiet"}, extra...)
	cmd := exec.Command(MailpitBinary(), args...)
	logs := &SyncBuffer{}
	cmd.Stdout, cmd.Stderr = logs, logs
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		tb.Fatalf("start mailpit: %v", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	tb.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	})
	WaitFor(tb, 20*time.Second, "mailpit ready", func() bool {
		select {
		case <-exited:
			tb.Fatalf("mailpit exited: %s", logs.String())
		default:
		}
		resp, err := http.Get(m.APIURL + "/api/v1/messages")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	return m
}

// MailAddress is an address as Mailpit reports it.
type MailAddress struct {
	Name    string `json:"Name"`
	Address string `json:"Address"`
}

// MailSummary is one message of Mailpit's list.
type MailSummary struct {
	ID        string        `json:"ID"`
	MessageID string        `json:"MessageID"`
	From      MailAddress   `json:"From"`
	To        []MailAddress `json:"To"`
	Subject   string        `json:"Subject"`
}

// Mail is one message with its parts.
type Mail struct {
	MailSummary
	Text string `json:"Text"`
	HTML string `json:"HTML"`
}

// Messages lists every message received, newest first.
func (m *Mailpit) Messages(tb testing.TB) []MailSummary {
	tb.Helper()
	var out struct {
		Messages []MailSummary `json:"messages"`
	}
	m.get(tb, "/api/v1/messages?limit=1000", &out)
	return out.Messages
}

// Message reads one message by Mailpit's ID.
func (m *Mailpit) Message(tb testing.TB, id string) Mail {
	tb.Helper()
	var out Mail
	m.get(tb, "/api/v1/message/"+url.PathEscape(id), &out)
	return out
}

// WaitMessages waits until cond holds over the received messages and returns them.
func (m *Mailpit) WaitMessages(tb testing.TB, timeout time.Duration, what string, cond func([]MailSummary) bool) []MailSummary {
	tb.Helper()
	var last []MailSummary
	WaitFor(tb, timeout, what, func() bool {
		last = m.Messages(tb)
		return cond(last)
	})
	return last
}

func (m *Mailpit) get(tb testing.TB, path string, into any) {
	tb.Helper()
	resp, err := http.Get(m.APIURL + path)
	if err != nil {
		tb.Fatalf("mailpit GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		tb.Fatalf("mailpit GET %s: %s", path, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(into); err != nil {
		tb.Fatalf("mailpit GET %s: %v", path, fmt.Errorf("decode: %w", err))
	}
}
