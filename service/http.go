package service

import (
	"net/http"
	"time"
)

// HTTPTimeouts bound what one connection may hold of the API's resources.
type HTTPTimeouts struct {
	ReadHeader time.Duration // slow-header clients (slowloris)
	Read       time.Duration // the whole request, body included (at most 64 KiB)
	Write      time.Duration // from the end of the headers to the end of the answer
	Idle       time.Duration // keep-alive between requests
}

// timeoutsFor derives the timeouts from UPDATE_TIMEOUT: a purchase may wait
// for two Updates (the parent's link, then its own start), each up to
// UPDATE_TIMEOUT, so the write timeout leaves room for both and the answer.
func timeoutsFor(updateTimeout time.Duration) HTTPTimeouts {
	return HTTPTimeouts{
		ReadHeader: 10 * time.Second,
		Read:       30 * time.Second,
		Write:      2*updateTimeout + 15*time.Second,
		Idle:       120 * time.Second,
	}
}

// newHTTPServer is the API's server with every timeout set.
func newHTTPServer(addr string, h http.Handler, t HTTPTimeouts) *http.Server {
	return &http.Server{
		Addr: addr, Handler: h,
		ReadHeaderTimeout: t.ReadHeader, ReadTimeout: t.Read, WriteTimeout: t.Write, IdleTimeout: t.Idle,
	}
}
