package stream

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strconv"
)

// denyList holds the addresses a stream must never reach whatever the
// address policy: this server's own listen address and its ClickHouse's
// ports (an HTTP request there would run as the server, around tenancy).
type denyList struct {
	exact map[netip.AddrPort]bool
	// ports are denied on every loopback and local address: an entry on
	// an unspecified or loopback host (0.0.0.0:8080, 127.0.0.1:9000) is
	// reachable through any of them.
	ports map[uint16]bool
	local []netip.Addr // this host's interface addresses
}

// newDenyList resolves host:port entries (a host may be a name, an
// address, or empty for every address).
func newDenyList(ctx context.Context, r Resolver, entries []string) (*denyList, error) {
	d := &denyList{exact: map[netip.AddrPort]bool{}, ports: map[uint16]bool{}}
	if len(entries) == 0 {
		return d, nil
	}
	if as, err := net.InterfaceAddrs(); err == nil {
		for _, a := range as {
			if p, err := netip.ParsePrefix(a.String()); err == nil {
				d.local = append(d.local, p.Addr().Unmap())
			}
		}
	}
	for _, e := range entries {
		host, ps, err := net.SplitHostPort(e)
		if err != nil {
			return nil, fmt.Errorf("stream: deny entry %q: want host:port", e)
		}
		port, err := strconv.ParseUint(ps, 10, 16)
		if err != nil || port == 0 {
			return nil, fmt.Errorf("stream: deny entry %q: bad port", e)
		}
		addrs := []netip.Addr{netip.IPv4Unspecified()}
		if host != "" {
			if addrs, err = resolve(ctx, r, host); err != nil {
				return nil, fmt.Errorf("stream: deny entry %q: %w", e, err)
			}
		}
		for _, a := range addrs {
			a = a.Unmap()
			if a.IsUnspecified() || a.IsLoopback() || d.isLocal(a) {
				d.ports[uint16(port)] = true
			}
			d.exact[netip.AddrPortFrom(a, uint16(port))] = true
		}
	}
	return d, nil
}

func (d *denyList) isLocal(a netip.Addr) bool {
	for _, l := range d.local {
		if l == a {
			return true
		}
	}
	return false
}

// denied reports whether a connection to a:port is forbidden.
func (d *denyList) denied(a netip.Addr, port uint16) bool {
	if d == nil {
		return false
	}
	a = a.Unmap()
	if d.exact[netip.AddrPortFrom(a, port)] {
		return true
	}
	return d.ports[port] && (a.IsLoopback() || a.IsUnspecified() || d.isLocal(a))
}
