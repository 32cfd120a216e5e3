package api

import (
	"context"
	"errors"
	"net/http"

	"go.temporal.io/api/serviceerror"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/gin-gonic/gin"

	"github.com/partnerhub/fulfillment/workflows"
)

// Problem codes of the contract (API.md), plus the ones this service adds.
const (
	CodeInvalidRequest           = "invalid_request"
	CodeIdempotencyKeyRequired   = "idempotency_key_required"
	CodeUnauthenticated          = "unauthenticated"
	CodeForbiddenRole            = "forbidden_role"
	CodeNotFound                 = "not_found"
	CodeInvalidState             = workflows.ErrInvalidState
	CodeCancellationWindowClosed = workflows.ErrCancellationWindowClosed
	CodeIdempotencyKeyInUse      = "idempotency_key_in_use"
	CodePayloadTooLarge          = "payload_too_large"
	CodeIdempotencyKeyReused     = "idempotency_key_reused"
	CodeValidationFailed         = workflows.ErrValidationFailed
	CodeRateLimited              = "rate_limited"
	CodeUnavailable              = "unavailable"
	CodeAlreadyExists            = "already_exists"
	CodeMethodNotAllowed         = "method_not_allowed"
	CodeInternal                 = "internal"
)

var problemStatus = map[string]int{
	CodeInvalidRequest:           http.StatusBadRequest,
	CodeIdempotencyKeyRequired:   http.StatusBadRequest,
	CodeUnauthenticated:          http.StatusUnauthorized,
	CodeForbiddenRole:            http.StatusForbidden,
	CodeNotFound:                 http.StatusNotFound,
	CodeInvalidState:             http.StatusConflict,
	CodeCancellationWindowClosed: http.StatusConflict,
	CodeIdempotencyKeyInUse:      http.StatusConflict,
	CodeAlreadyExists:            http.StatusConflict,
	CodeMethodNotAllowed:         http.StatusMethodNotAllowed,
	CodePayloadTooLarge:          http.StatusRequestEntityTooLarge,
	CodeIdempotencyKeyReused:     http.StatusUnprocessableEntity,
	CodeValidationFailed:         http.StatusUnprocessableEntity,
	CodeRateLimited:              http.StatusTooManyRequests,
	CodeUnavailable:              http.StatusServiceUnavailable,
	CodeInternal:                 http.StatusInternalServerError,
}

var problemTitle = map[string]string{
	CodeInvalidRequest:           "The request is malformed",
	CodeIdempotencyKeyRequired:   "Idempotency-Key header is required",
	CodeUnauthenticated:          "Authentication failed",
	CodeForbiddenRole:            "Your role does not allow this action",
	CodeNotFound:                 "Not found",
	CodeInvalidState:             "The subscription's state does not allow this action",
	CodeCancellationWindowClosed: "The cancellation window has closed",
	CodeIdempotencyKeyInUse:      "A request with this key is still running",
	CodeAlreadyExists:            "Already exists",
	CodeMethodNotAllowed:         "Method not allowed",
	CodePayloadTooLarge:          "The body is larger than 64 KiB",
	CodeIdempotencyKeyReused:     "The key was used with a different request",
	CodeValidationFailed:         "The request's values are not valid",
	CodeRateLimited:              "Too many requests",
	CodeUnavailable:              "The service is unavailable",
	CodeInternal:                 "Internal error",
}

// ProblemTypeBase prefixes every problem type URI.
const ProblemTypeBase = "https://fulfillment.partnerhub.dev/problems/"

// Problem is an RFC 9457 problem detail.
type Problem struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail"`
	Code   string `json:"code"`
	cause  error
}

// Error lets handlers return a Problem as an error.
func (p *Problem) Error() string { return p.Code + ": " + p.Detail }

// problem builds a Problem for a contract code.
func problem(code, detail string) *Problem {
	status, ok := problemStatus[code]
	if !ok {
		status, code = http.StatusInternalServerError, CodeInternal
	}
	return &Problem{Type: ProblemTypeBase + code, Title: problemTitle[code], Status: status, Detail: detail, Code: code}
}

// writeProblem answers with err as problem+json; anything that is not a
// Problem is logged and answered as 500 without detail.
func writeProblem(c *gin.Context, err error) {
	var p *Problem
	if !errors.As(err, &p) {
		logger(c).Error("request failed", "error", err)
		p = problem(CodeInternal, "an unexpected error occurred; it has been logged")
	}
	if p.cause != nil {
		logger(c).Warn("dependency failed", "code", p.Code, "error", p.cause)
	}
	c.Header("Content-Type", "application/problem+json")
	c.Header("Cache-Control", "no-store")
	c.AbortWithStatusJSON(p.Status, p)
}

// unavailable answers 503 for a dependency failure, keeping the cause for the log.
func unavailable(cause error) *Problem {
	p := problem(CodeUnavailable, "PostgreSQL or Temporal did not answer; nothing was changed, retry later")
	if mayStillApply(cause) {
		// Temporal may hold the message and apply it once a worker runs: say so.
		p.Detail = "Temporal did not answer in time; the request may still take effect. " +
			"Retrying it with the same Idempotency-Key or webhook-id is safe: it is applied at most once"
	}
	p.cause = cause
	return p
}

// mayStillApply tells a timeout (the caller's context, or Temporal's own
// deadline) from a refusal: after a timeout the message may still be applied.
func mayStillApply(err error) bool {
	var deadline *serviceerror.DeadlineExceeded
	return errors.Is(err, context.DeadlineExceeded) || errors.As(err, &deadline) ||
		status.Code(errors.Unwrap(err)) == codes.DeadlineExceeded || status.Code(err) == codes.DeadlineExceeded
}
