package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/partnerhub/fulfillment/e2e"
)

// scaleResult is the scale phase: many open subscriptions waiting on their
// activation timers, then callbacks to a random sample of them.
type scaleResult struct {
	cacheSize          string
	open               int
	purchaseErrors     int64
	purchaseRate       float64
	purchase           samples
	rssPeak, rssNow    float64 // worker, after the purchases
	callbacks          int
	callbackErrors     int64
	flow               samples // resolve + licenses + activate of one subscription
	rssPeak2, rssNow2  float64 // worker, after the callbacks
	lastErr            string
	lastErrMu          sync.Mutex
	callbacksCompleted int64
}

type purchased struct{ id, code string }

// runScale buys n subscriptions (each workflow then waits on its 30-day
// activation timer), reads the worker's RSS, then sends the publisher's three
// callbacks to sample of them picked at random, checking each ends active.
func runScale(ctx context.Context, s *stack, n, sample, concurrency int, cacheSize string) *scaleResult {
	r := &scaleResult{cacheSize: cacheSize}
	fail := func(err error) {
		r.lastErrMu.Lock()
		r.lastErr = err.Error()
		r.lastErrMu.Unlock()
	}
	subs := make([]purchased, n)
	var next atomic.Int64
	var wg sync.WaitGroup
	t0 := time.Now()
	for range concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				req := s.partner(http.MethodPost, "/v1/subscriptions", e2e.AdminKey, map[string]any{
					"customer_id": "woodgrove", "offer_id": "analytics", "plan_id": "annual", "quantity": 5,
				})
				req.Header.Set("Idempotency-Key", uuid.NewString())
				t := time.Now()
				a, err := s.do(ctx, req)
				if err != nil {
					atomic.AddInt64(&r.purchaseErrors, 1)
					fail(err)
					continue
				}
				r.purchase.add(time.Since(t))
				id, _ := a.body["id"].(string)
				link, _ := a.body["publisher_link"].(map[string]any)
				code, _ := link["authorization_code"].(string)
				subs[i] = purchased{id: id, code: code}
			}
		}()
	}
	wg.Wait()
	r.open = r.purchase.count()
	r.purchaseRate = float64(r.open) / time.Since(t0).Seconds()
	r.rssPeak, r.rssNow = rss(s.worker.Process.Pid)

	picks := rand.Perm(n)[:min(sample, n)]
	r.callbacks = len(picks)
	next.Store(0)
	for range min(concurrency, 16) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				i := int(next.Add(1)) - 1
				if i >= len(picks) {
					return
				}
				sub := subs[picks[i]]
				if sub.id == "" {
					continue
				}
				t := time.Now()
				err := func() error {
					if _, err := s.do(ctx, s.publisher("/v1/publisher/resolve", map[string]any{"authorization_code": sub.code})); err != nil {
						return err
					}
					if _, err := s.do(ctx, s.publisher("/v1/publisher/subscriptions/"+sub.id+"/licenses", map[string]any{"assigned": 3})); err != nil {
						return err
					}
					a, err := s.do(ctx, s.publisher("/v1/publisher/subscriptions/"+sub.id+"/activate", map[string]any{"site_url": "https://woodgrove.contoso.example"}))
					if err != nil {
						return err
					}
					if st, _ := a.body["status"].(string); st != "active" {
						return fmt.Errorf("activate answered status %q", st)
					}
					return nil
				}()
				if err != nil {
					atomic.AddInt64(&r.callbackErrors, 1)
					fail(err)
					continue
				}
				atomic.AddInt64(&r.callbacksCompleted, 1)
				r.flow.add(time.Since(t))
			}
		}()
	}
	wg.Wait()
	r.rssPeak2, r.rssNow2 = rss(s.worker.Process.Pid)
	return r
}
