package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"unicode/utf8"

	"github.com/gin-gonic/gin"
)

// MaxBodyBytes bounds every request body (413 beyond).
const MaxBodyBytes = 64 << 10

// readBody reads the whole body within the limit.
func readBody(c *gin.Context) ([]byte, error) {
	if c.Request.ContentLength > MaxBodyBytes {
		return nil, problem(CodePayloadTooLarge, fmt.Sprintf("the body may hold at most %d bytes", MaxBodyBytes))
	}
	body, err := io.ReadAll(http.MaxBytesReader(c.Writer, c.Request.Body, MaxBodyBytes))
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		return nil, problem(CodePayloadTooLarge, fmt.Sprintf("the body may hold at most %d bytes", MaxBodyBytes))
	}
	if err != nil {
		return nil, problem(CodeInvalidRequest, "the body could not be read")
	}
	return body, nil
}

// decodeBody reads the body and decodes it with decode; on failure it has
// already answered with the problem.
func decodeBody[T any](c *gin.Context, decode func([]byte) (T, error)) (T, bool) {
	var req T
	body, err := readBody(c)
	if err == nil {
		req, err = decode(body)
	}
	if err != nil {
		writeProblem(c, err)
		return req, false
	}
	return req, true
}

// DecodeStrict decodes one JSON object into v: unknown fields, wrong types,
// trailing data and invalid UTF-8 are rejected with invalid_request.
func DecodeStrict(body []byte, v any) error {
	if !utf8.Valid(body) {
		return problem(CodeInvalidRequest, "the body is not valid UTF-8")
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return problem(CodeInvalidRequest, "the body must be a JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return problem(CodeInvalidRequest, describeJSONError(err))
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return problem(CodeInvalidRequest, "the body has data after the JSON object")
	}
	return nil
}

func describeJSONError(err error) string {
	var typeErr *json.UnmarshalTypeError
	var syntaxErr *json.SyntaxError
	switch {
	case errors.As(err, &typeErr):
		if typeErr.Field == "" {
			return "the body must be a JSON object"
		}
		return fmt.Sprintf("field %q must be of type %s", typeErr.Field, typeErr.Value)
	case errors.As(err, &syntaxErr):
		return fmt.Sprintf("malformed JSON at byte %d", syntaxErr.Offset)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "the JSON body ends too early"
	}
	return "malformed JSON: " + err.Error()
}
