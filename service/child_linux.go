package service

import "syscall"

// childProcess is how `fulfillment dev` starts the servers it owns (the
// Temporal dev server, Mailpit): in their own process group, so a Ctrl-C
// reaches only this process, which stops them in order; and with SIGTERM
// sent to them by the kernel if this process dies without that chance
// (SIGKILL, an OOM kill), so no orphan keeps their ports.
func childProcess() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
}
