package service

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"
)

// DevMailpit is the local SMTP server with a web inbox that `fulfillment
// dev` starts (nil Cmd when none was started).
type DevMailpit struct {
	Cmd      *exec.Cmd
	SMTPURL  string
	InboxURL string
}

// StartDevMailpit starts Mailpit on loopback (SMTP on smtpPort, web inbox on
// uiPort; a busy port is replaced by a free one), keeping its messages in
// dataDir, and waits until its API answers.
func StartDevMailpit(ctx context.Context, binary string, smtpPort, uiPort int, dataDir string, logger *slog.Logger) (*DevMailpit, error) {
	if _, err := os.Stat(binary); err != nil {
		return nil, fmt.Errorf("mailpit not found at %s (`make run` installs it): %w", binary, err)
	}
	if err := os.MkdirAll(dataDir, 0o755); err != nil {
		return nil, err
	}
	smtpAddr, uiAddr := loopbackAddr(smtpPort), loopbackAddr(uiPort)
	logFile, err := os.Create(filepath.Join(dataDir, "mailpit.log"))
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(binary, "--smtp", smtpAddr, "--listen", uiAddr, "--database", filepath.Join(dataDir, "mailpit.db"),
		"--smtp-auth-accept-any", "--smtp-auth-allow-insecure", "--disable-version-check")
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = childProcess() // Ctrl-C reaches us; we stop it in order
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start mailpit: %w", err)
	}
	m := &DevMailpit{Cmd: cmd, SMTPURL: "smtp://" + smtpAddr, InboxURL: "http://" + uiAddr}
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(m.InboxURL + "/api/v1/info")
		if err == nil {
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			m.Stop()
			return nil, fmt.Errorf("mailpit did not answer; see %s", logFile.Name())
		}
		time.Sleep(100 * time.Millisecond)
	}
	logger.Info("mailpit started", "smtp", smtpAddr, "inbox", m.InboxURL, "log", logFile.Name())
	return m, nil
}

// loopbackAddr is 127.0.0.1:port, or a free loopback port when port is taken.
func loopbackAddr(port int) string {
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	l, err := net.Listen("tcp", addr)
	if err != nil {
		l, err = net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return addr
		}
	}
	defer l.Close()
	return l.Addr().String()
}

// Stop ends the Mailpit this process started.
func (m *DevMailpit) Stop() {
	if m == nil || m.Cmd == nil || m.Cmd.Process == nil {
		return
	}
	_ = m.Cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = m.Cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = m.Cmd.Process.Kill()
		<-done
	}
}
