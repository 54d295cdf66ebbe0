package stream

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// tokenSource obtains and caches an OAuth 2.0 access token with the client
// credentials grant (RFC 6749 section 4.4, as the Microsoft identity
// platform implements it). A token is reused until shortly before it
// expires: a tenth of its lifetime, at most five minutes, ahead.
type tokenSource struct {
	env  *env
	url  string
	form url.Values

	mu      sync.Mutex
	token   string
	refresh time.Time // fetch a new token from this instant on
}

// tokenAnswer is the token endpoint's JSON answer. expires_in is a number
// in the v2.0 endpoint, a string in v1.0: both are accepted.
type tokenAnswer struct {
	AccessToken string          `json:"access_token"`
	TokenType   string          `json:"token_type"`
	ExpiresIn   json.RawMessage `json:"expires_in"`
	Error       string          `json:"error"`
}

// get returns a valid token, fetching one when none is cached or it is
// about to expire.
func (t *tokenSource) get(ctx context.Context) (string, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.env.now()
	if t.token != "" && now.Before(t.refresh) {
		return t.token, nil
	}
	token, life, err := t.fetch(ctx)
	if err != nil {
		return "", err
	}
	t.token, t.refresh = token, now.Add(life-min(life/10, 5*time.Minute))
	return token, nil
}

// drop forgets the cached token (the destination refused it).
func (t *tokenSource) drop() {
	t.mu.Lock()
	t.token = ""
	t.mu.Unlock()
}

func (t *tokenSource) fetch(ctx context.Context) (string, time.Duration, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.url, strings.NewReader(t.form.Encode()))
	if err != nil {
		return "", 0, &destError{msg: "cannot build the token request"}
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	resp, err := t.env.client.Do(req)
	if err != nil {
		return "", 0, err // classified like any unanswered request
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, maxAnswerRead))
	var ans tokenAnswer
	_ = json.Unmarshal(raw, &ans)
	if resp.StatusCode != http.StatusOK {
		msg := fmt.Sprintf("the identity platform refused a token (%d %s", resp.StatusCode, http.StatusText(resp.StatusCode))
		if ans.Error != "" {
			msg += ", " + printable([]byte(ans.Error), 64)
		}
		return "", 0, &destError{status: resp.StatusCode, retryable: retryableStatus(resp.StatusCode),
			retryAfter: retryAfter(resp.Header.Get("Retry-After"), t.env.now(), time.Hour), msg: msg + ")"}
	}
	life, ok := seconds(ans.ExpiresIn)
	if ans.AccessToken == "" || !ok || !strings.EqualFold(ans.TokenType, "Bearer") {
		return "", 0, &destError{status: resp.StatusCode, retryable: true,
			msg: "the identity platform's token answer lacks a bearer access_token or expires_in"}
	}
	return ans.AccessToken, life, nil
}

// seconds reads expires_in, a number or a string of digits.
func seconds(raw json.RawMessage) (time.Duration, bool) {
	s := strings.Trim(string(raw), `"`)
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 {
		return 0, false
	}
	return time.Duration(n) * time.Second, true
}
