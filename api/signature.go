// Standard Webhooks signatures of signed messages (publishers, partners' billing systems).

package api

import (
	"errors"
	"strings"

	"github.com/gin-gonic/gin"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
)

// verifyWith checks a Standard Webhooks signature against the sealed secrets
// secrets returns (read only once the headers are well-formed); owner names
// whose secrets they are in the log of a secret that cannot be opened. It
// returns why the message is rejected, or "" when a signature made with one of
// the active secrets matches; an error means the secrets could not be read:
// nothing can be decided (503, never 401).
func (s *Server) verifyWith(c *gin.Context, body []byte, ownerKind, owner string, secrets func() ([][]byte, error)) (string, error) {
	if _, err := ParseSignatureHeader(c.GetHeader(standardwebhooks.HeaderWebhookSignature)); err != nil {
		var p *Problem
		if errors.As(err, &p) {
			return p.Detail, nil
		}
		return err.Error(), nil
	}
	if len(c.GetHeader(standardwebhooks.HeaderWebhookID)) > 255 {
		return "webhook-id longer than 255 characters", nil
	}
	sealed, err := secrets()
	if err != nil {
		return "", err
	}
	reason := "no matching signature"
	for _, sec := range sealed {
		secret, err := s.Vault.Open(sec)
		if err != nil {
			logger(c).Error("open signing secret", ownerKind, owner, "error", err)
			continue
		}
		wh, err := standardwebhooks.NewWebhook(string(secret))
		if err != nil {
			continue
		}
		err = wh.Verify(body, c.Request.Header)
		switch {
		case err == nil:
			return "", nil
		case errors.Is(err, standardwebhooks.ErrMessageTooOld), errors.Is(err, standardwebhooks.ErrMessageTooNew):
			return "timestamp more than 5 minutes off", nil
		case errors.Is(err, standardwebhooks.ErrRequiredHeaders):
			return "missing webhook-id, webhook-timestamp or webhook-signature", nil
		case errors.Is(err, standardwebhooks.ErrInvalidHeaders):
			return "malformed webhook-timestamp", nil
		}
	}
	return reason, nil
}

// Signature is one entry of a webhook-signature header.
type Signature struct {
	Version string
	Value   string
}

// ParseSignatureHeader splits a webhook-signature header ("v1,<b64> v1,<b64>")
// into its well-formed entries; it rejects an empty or oversized header and
// one with no well-formed entry with an unauthenticated *Problem.
func ParseSignatureHeader(header string) ([]Signature, error) {
	if strings.TrimSpace(header) == "" {
		return nil, problem(CodeUnauthenticated, "missing webhook-signature")
	}
	if len(header) > 4096 {
		return nil, problem(CodeUnauthenticated, "webhook-signature header too long")
	}
	var sigs []Signature
	for _, part := range strings.Fields(header) {
		version, value, ok := strings.Cut(part, ",")
		if ok && version != "" && value != "" {
			sigs = append(sigs, Signature{Version: version, Value: value})
		}
	}
	if len(sigs) == 0 {
		return nil, problem(CodeUnauthenticated, "malformed webhook-signature")
	}
	return sigs, nil
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}
