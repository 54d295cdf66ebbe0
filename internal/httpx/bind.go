package httpx

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/auditstore/auditstore/schema"
)

// MaxJSONBody bounds the small JSON bodies of the management endpoints.
const MaxJSONBody = 64 << 10

// BindJSON decodes a small JSON object strictly (unknown fields are
// errors, at most MaxJSONBody bytes are read) into v, or returns a 400
// invalid_body saying what is wrong.
func BindJSON(c *gin.Context, v any) error {
	dec := json.NewDecoder(io.LimitReader(c.Request.Body, MaxJSONBody+1))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return schema.Invalid("invalid_body", "request body must be a JSON object with the documented fields: "+jsonProblem(err))
	}
	if dec.More() {
		return schema.Invalid("invalid_body", "request body must hold one JSON object")
	}
	return nil
}

func jsonProblem(err error) string {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case err == io.EOF:
		return "empty body"
	case errors.As(err, &se):
		return fmt.Sprintf("malformed JSON at byte %d", se.Offset)
	case errors.As(err, &te):
		return fmt.Sprintf("field %q must be a %s", te.Field, te.Type)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return "unknown field " + strings.TrimPrefix(err.Error(), "json: unknown field ")
	default:
		return fmt.Sprintf("malformed JSON (at most %d KiB)", MaxJSONBody>>10)
	}
}
