//go:build !linux

package service

import "syscall"

// childProcess: see child_linux.go. Without Linux's parent-death signal, a
// killed `fulfillment dev` leaves its servers to be stopped by hand.
func childProcess() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
