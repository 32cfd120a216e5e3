package api

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/partnerhub/fulfillment/store"
)

// once makes a message take effect once per key (a purchase's
// Idempotency-Key, a publisher message's webhook-id) over one of the store's
// claim tables. Each caller states its policy; the way through is the same:
// claim the key for this request's hash; a key used for another request is
// refused, a finished one is answered from its stored answer, a running one
// is waited for or refused; otherwise the message runs and its answer is
// stored — or, when the answer says nothing happened, the key is freed for a
// fresh attempt.
type once struct {
	claim    func(ctx context.Context) (store.Claim, error)
	complete func(ctx context.Context, status int, body []byte) error
	release  func(ctx context.Context) error
	// reused and running are the problems for a key of another request and
	// for one still running (after waitRunning, if set, has passed).
	reused, running *Problem
	// waitRunning is how long to wait for a running first delivery's answer.
	waitRunning time.Duration
	// frees tells which answers mean nothing happened.
	frees func(status int) bool
	// replay rebuilds the answer from the stored one (default: as stored).
	replay func(ctx context.Context, c store.Claim) ([]byte, error)
}

// answer is what a message answered: its status and body, and whether it is a
// stored answer replayed.
type answer struct {
	status   int
	body     []byte
	replayed bool
	// claim is the claim the message ran under (its subscription id, for purchases).
	claim store.Claim
	// settleErr is a failure to store the answer or free the key: it costs
	// only the replay (the claim goes stale and a retry takes it over), so
	// it is logged, not answered.
	settleErr error
}

// run answers the message, running it at most once. run returns the status,
// the body to answer with and the body to store (nil: the same).
func (o once) run(ctx context.Context, run func(store.Claim) (status int, body, stored []byte, err error)) (answer, error) {
	deadline := time.Now().Add(o.waitRunning)
	for {
		claim, err := o.claim(ctx)
		if err != nil {
			return answer{}, unavailable(err)
		}
		switch claim.State {
		case store.ClaimMismatch:
			return answer{}, o.reused
		case store.ClaimReplay:
			body := claim.ResponseBody
			if o.replay != nil {
				if body, err = o.replay(ctx, claim); err != nil {
					return answer{}, err
				}
			}
			return answer{status: claim.ResponseStatus, body: body, replayed: true, claim: claim}, nil
		case store.ClaimInUse:
			if !time.Now().Before(deadline) {
				return answer{}, o.running
			}
			select { // the first delivery is still running: wait for its answer
			case <-ctx.Done():
				return answer{}, unavailable(ctx.Err())
			case <-time.After(50 * time.Millisecond):
			}
			continue
		}
		status, body, stored, err := run(claim)
		// Settled even if the caller hung up meanwhile (its context is
		// cancelled then): otherwise its retry would find the key locked.
		settle := context.WithoutCancel(ctx)
		if o.frees(statusOf(status, err)) {
			return answer{settleErr: o.release(settle), claim: claim}, err
		}
		if err != nil {
			return answer{claim: claim}, err
		}
		if stored == nil {
			stored = body
		}
		return answer{status: status, body: body, claim: claim, settleErr: o.complete(settle, status, stored)}, nil
	}
}

// statusOf is the HTTP status an outcome answers with.
func statusOf(status int, err error) int {
	if err == nil {
		return status
	}
	var p *Problem
	if errors.As(err, &p) {
		return p.Status
	}
	return http.StatusInternalServerError
}

// answerOnce runs a signed message's handler under o and writes the answer:
// the first delivery's (refusals included), the same again for a redelivery
// (Idempotent-Replayed: true), or o's problem. An unavailable answer (5xx) is
// not stored, so the sender's retry is processed afresh. what names the
// message id in the log when settling fails.
func answerOnce(c *gin.Context, o once, what string, handle func() (int, any)) {
	ans, err := o.run(c.Request.Context(), func(store.Claim) (int, []byte, []byte, error) {
		status, answer := handle()
		if p, ok := answer.(*Problem); ok && p.Status >= 500 {
			return 0, nil, nil, p
		}
		body, err := json.Marshal(answer)
		return status, body, nil, err
	})
	if ans.settleErr != nil {
		logger(c).Warn("settle "+what, "error", ans.settleErr)
	}
	if err != nil {
		writeProblem(c, err)
		return
	}
	if ans.replayed {
		c.Header("Idempotent-Replayed", "true")
	}
	contentType := "application/json; charset=utf-8"
	if ans.status >= 400 {
		contentType = "application/problem+json"
	}
	c.Data(ans.status, contentType, ans.body)
}
