package e2e

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/partnerhub/fulfillment/testenv"
)

// requireProblem asserts an RFC 9457 answer with the given status and code.
// msgAndArgs is an optional format and its arguments naming the request.
func mustProblem(t *testing.T, r testenv.Response, status int, code string, msgAndArgs ...any) {
	t.Helper()
	what := r.String()
	if len(msgAndArgs) > 0 {
		what = fmt.Sprintf(msgAndArgs[0].(string), msgAndArgs[1:]...) + ": " + what
	}
	require.Equal(t, status, r.Status, what)
	assert.Equal(t, code, r.Str("code"), what)
	assert.Equal(t, "application/problem+json", r.Header.Get("Content-Type"), what)
	assert.EqualValues(t, status, r.Body["status"], what)
}

// authorizationCode reads the code of a purchase answer's publisher link.
func trustCode(t *testing.T, r testenv.Response) string {
	t.Helper()
	link, ok := r.Body["publisher_link"].(map[string]any)
	require.True(t, ok, "no publisher_link in %s", r.String())
	code, _ := link["authorization_code"].(string)
	require.NotEmpty(t, code, r.String())
	return code
}

// subscription reads a subscription as its own partner.
func trustSubscription(t *testing.T, p testenv.Partner, id string) testenv.Response {
	t.Helper()
	r := p.Do(http.MethodGet, "/v1/subscriptions/"+id, nil)
	require.Equal(t, http.StatusOK, r.Status, r.String())
	return r
}

// eventTypes lists the types of a subscription's timeline, read as its partner.
func trustEvents(t *testing.T, p testenv.Partner, id string) []string {
	t.Helper()
	r := p.Do(http.MethodGet, "/v1/subscriptions/"+id+"/events", nil)
	require.Equal(t, http.StatusOK, r.Status, r.String())
	var types []string
	for _, item := range r.Body["items"].([]any) {
		types = append(types, item.(map[string]any)["type"].(string))
	}
	return types
}
