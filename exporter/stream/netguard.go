package stream

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/auditstore/auditstore/schema"
)

// Destinations are addresses the operator's users choose: without
// AllowPrivate a stream may reach only public addresses, so that it cannot
// be aimed at the server's own network (cloud metadata endpoints, internal
// services). Addresses are checked twice: when a stream is created or
// changed (each address its host resolves to), and when each connection is
// made (the address actually dialed), so that a name re-pointed at an
// internal address after the check (DNS rebinding) is still refused.
// Redirects are never followed.

// internalReason says why a is not a public address, or "" when it is.
func internalReason(a netip.Addr) string {
	a = a.Unmap()
	if a.Is6() {
		// Addresses that embed an IPv4 address: NAT64 (64:ff9b::/96) and 6to4.
		b := a.As16()
		switch {
		case nat64.Contains(a):
			return internalReason(netip.AddrFrom4([4]byte(b[12:16])))
		case sixToFour.Contains(a):
			return internalReason(netip.AddrFrom4([4]byte(b[2:6])))
		}
	}
	switch {
	case !a.IsValid():
		return "invalid"
	case a.IsUnspecified():
		return "unspecified"
	case a.IsLoopback():
		return "loopback"
	case a.IsPrivate():
		return "private"
	case a.IsMulticast():
		return "multicast"
	case a.IsLinkLocalUnicast():
		return "link-local"
	}
	for _, p := range internalPrefixes {
		if p.prefix.Contains(a) {
			return p.reason
		}
	}
	return ""
}

var (
	nat64     = netip.MustParsePrefix("64:ff9b::/96")
	sixToFour = netip.MustParsePrefix("2002::/16")
)

var internalPrefixes = []struct {
	prefix netip.Prefix
	reason string
}{
	{netip.MustParsePrefix("0.0.0.0/8"), "unspecified"},
	{netip.MustParsePrefix("100.64.0.0/10"), "shared (carrier-grade NAT)"},
	{netip.MustParsePrefix("192.0.0.0/24"), "reserved"},
	{netip.MustParsePrefix("198.18.0.0/15"), "benchmarking"},
	{netip.MustParsePrefix("240.0.0.0/4"), "reserved"},
	{netip.MustParsePrefix("fec0::/10"), "site-local"},
	{netip.MustParsePrefix("100::/64"), "discard"},
}

// refusedError is a connection the address policy forbids; retrying does
// not help. Its message never names the address: a stream's owner must not
// learn what an internal name resolves to.
type refusedError struct {
	addr   netip.Addr
	reason string
	plain  bool // plain http to a public address
	self   bool // this server or its database
}

func (e *refusedError) Error() string {
	switch {
	case e.self:
		return "the destination is this server or its database: refused"
	case e.plain && !e.addr.IsValid():
		return "plain http destinations are refused: use https"
	case e.plain:
		return "the destination is public: plain http is allowed only to private addresses"
	}
	return "the destination resolves to a non-public address: refused (the operator allows such destinations with -allow-private-destinations)"
}

// permit checks one address about to be dialed on port.
func permit(a netip.Addr, port uint16, deny *denyList, allowPrivate, plainHTTP bool) error {
	a = a.Unmap()
	if deny.denied(a, port) {
		return &refusedError{addr: a, self: true}
	}
	reason := internalReason(a)
	switch {
	case reason == "multicast" || reason == "invalid":
		return &refusedError{addr: a, reason: reason}
	case reason != "" && !allowPrivate:
		return &refusedError{addr: a, reason: reason}
	case reason == "" && plainHTTP:
		return &refusedError{addr: a, plain: true}
	}
	return nil
}

// guardedDialer resolves a name itself and dials only permitted addresses.
type guardedDialer struct {
	resolver     Resolver
	deny         *denyList
	allowPrivate bool
	plainHTTP    bool // the transport for http:// URLs: private addresses only
	dialer       net.Dialer
}

func (g *guardedDialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	p, err := netip.ParseAddr(strings.Trim(host, "[]"))
	var addrs []netip.Addr
	if err == nil {
		addrs = []netip.Addr{p}
	} else if addrs, err = g.resolver.LookupNetIP(ctx, "ip", host); err != nil {
		return nil, fmt.Errorf("resolve %s: %w", host, err)
	}
	if len(addrs) == 0 {
		return nil, fmt.Errorf("resolve %s: no address", host)
	}
	pn, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		return nil, fmt.Errorf("bad port %q", port)
	}
	var first error
	for _, a := range addrs {
		if err := permit(a, uint16(pn), g.deny, g.allowPrivate, g.plainHTTP); err != nil {
			first = cmpErr(first, err)
			continue
		}
		c, err := g.dialer.DialContext(ctx, network, net.JoinHostPort(a.Unmap().String(), port))
		if err == nil {
			return c, nil
		}
		first = cmpErr(first, err)
	}
	return nil, first
}

func cmpErr(first, err error) error {
	if first == nil {
		return err
	}
	return first
}

// control re-checks the socket's address just before connect: a last line
// against any path that would dial an unchecked address.
func (g *guardedDialer) control(_, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("unexpected dial address %q", address)
	}
	return permit(ap.Addr(), ap.Port(), g.deny, g.allowPrivate, g.plainHTTP)
}

// newClient returns the HTTP client of every delivery: https through one
// guarded transport, plain http (only with AllowPrivate, only to private
// addresses) through another; no proxy from the environment (it would
// bypass the address checks); redirects are answered, not followed.
func newClient(cfg Config, deny *denyList) *http.Client {
	transport := func(plain bool) *http.Transport {
		g := &guardedDialer{resolver: cfg.Resolver, deny: deny, allowPrivate: cfg.AllowPrivate, plainHTTP: plain,
			dialer: net.Dialer{Timeout: min(cfg.RequestTimeout, 30*time.Second), KeepAlive: 30 * time.Second}}
		g.dialer.Control = g.control
		t := &http.Transport{
			DialContext: g.DialContext, ForceAttemptHTTP2: true,
			MaxIdleConns: 256, MaxIdleConnsPerHost: 4, IdleConnTimeout: 90 * time.Second,
			TLSHandshakeTimeout: 10 * time.Second, ExpectContinueTimeout: time.Second,
			ResponseHeaderTimeout: cfg.RequestTimeout,
		}
		if cfg.TLS != nil {
			t.TLSClientConfig = cfg.TLS.Clone()
		}
		return t
	}
	rt := schemeRouter{https: transport(false)}
	if cfg.AllowPrivate {
		rt.http = transport(true)
	}
	return &http.Client{Transport: rt, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}
}

type schemeRouter struct{ https, http *http.Transport }

func (r schemeRouter) RoundTrip(req *http.Request) (*http.Response, error) {
	switch {
	case req.URL.Scheme == "https":
		return r.https.RoundTrip(req)
	case req.URL.Scheme == "http" && r.http != nil:
		return r.http.RoundTrip(req)
	}
	if req.Body != nil {
		req.Body.Close()
	}
	return nil, &refusedError{plain: true}
}

// guard checks destination URLs when a stream is created or changed.
type guard struct {
	resolver     Resolver
	deny         *denyList
	allowPrivate bool
}

// checkURL parses a destination URL of a stream's config field and checks
// it: https (or, with AllowPrivate, http to a private address), no
// credentials in it, and a host whose every address is permitted.
func (g guard) checkURL(ctx context.Context, raw, field string) (*url.URL, error) {
	bad := func(code, msg string) error {
		return schema.Invalid("invalid_stream_config", fmt.Sprintf("config.%s: %s", field, msg),
			schema.FieldError{Index: -1, Field: "config." + field, Code: code, Message: msg})
	}
	if raw == "" {
		return nil, bad("required", "a URL is required")
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || u.Opaque != "" || len(raw) > maxConfigStrBytes {
		return nil, bad("url", "must be an absolute URL such as https://logs.example.com/path")
	}
	if u.User != nil {
		return nil, bad("url", "must not carry credentials (user:password@); use the provider's credential fields or headers")
	}
	if u.Fragment != "" {
		return nil, bad("url", "must not have a fragment")
	}
	plain := u.Scheme == "http"
	if u.Scheme != "https" && !(plain && g.allowPrivate) {
		return nil, bad("https_required", "must use https")
	}
	port := uint64(443)
	if plain {
		port = 80
	}
	if p := u.Port(); p != "" {
		var err error
		if port, err = strconv.ParseUint(p, 10, 16); err != nil || port < 1 {
			return nil, bad("url", "has an invalid port")
		}
	}
	host := u.Hostname()
	addrs, err := resolve(ctx, g.resolver, host)
	if err != nil || len(addrs) == 0 {
		return nil, bad("unresolvable", fmt.Sprintf("host %q does not resolve", schema.Truncate(host, 100)))
	}
	for _, a := range addrs {
		if err := permit(a, uint16(port), g.deny, g.allowPrivate, plain); err != nil {
			var re *refusedError
			errors.As(err, &re)
			switch {
			case re.self:
				return nil, bad("forbidden_destination", "the destination is this server or its database: refused")
			case re.plain:
				return nil, bad("https_required", "plain http is allowed only to private addresses; use https")
			}
			return nil, bad("private_address", fmt.Sprintf("host %q resolves to a non-public address: refused", schema.Truncate(host, 100)))
		}
	}
	return u, nil
}

// resolve returns host's addresses: host itself when it is an IP address,
// else what r resolves it to within 5 s.
func resolve(ctx context.Context, r Resolver, host string) ([]netip.Addr, error) {
	if a, err := netip.ParseAddr(host); err == nil {
		return []netip.Addr{a}, nil
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	return r.LookupNetIP(ctx, "ip", host)
}
