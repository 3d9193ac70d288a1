package api

import (
	"context"
	"net"
	"net/netip"
	"net/url"
	"strings"
	"time"

	"github.com/chatrabridge/chatrabridge"
)

// resolveTimeout bounds the name lookup of an integration's URL.
const resolveTimeout = 3 * time.Second

// sharedAddressSpace is 100.64.0.0/10 (carrier-grade NAT), private in all but name.
var sharedAddressSpace = netip.MustParsePrefix("100.64.0.0/10")

// internalAddr reports whether a is not a public unicast address: loopback, private,
// link-local, shared (100.64.0.0/10), unspecified or multicast.
func internalAddr(a netip.Addr) bool {
	a = a.Unmap()
	return a.IsLoopback() || a.IsPrivate() || a.IsLinkLocalUnicast() || a.IsLinkLocalMulticast() ||
		a.IsInterfaceLocalMulticast() || a.IsMulticast() || a.IsUnspecified() || sharedAddressSpace.Contains(a) ||
		(a.Is4() && a.As4()[0] == 0)
}

// checkPublicURL refuses (EINVALID naming field) a URL whose host is, or resolves to, an
// internal address (internalAddr), unless allowPrivate: an integration's Chatra and
// Planfix URLs are called by the bridge with the integration's credentials, and must not
// make it a way into its own network. A host that does not resolve now is taken (its
// calls fail until it does; verify says so).
func checkPublicURL(ctx context.Context, allowPrivate bool, field, raw string) error {
	if allowPrivate {
		return nil
	}
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil {
		return nil // Validate names what is wrong with it
	}
	host := strings.TrimSuffix(u.Hostname(), ".")
	var addrs []netip.Addr
	if a, err := netip.ParseAddr(host); err == nil {
		addrs = []netip.Addr{a}
	} else if h := strings.ToLower(host); h == "localhost" || strings.HasSuffix(h, ".localhost") {
		addrs = []netip.Addr{netip.IPv6Loopback()}
	} else {
		ctx, cancel := context.WithTimeout(ctx, resolveTimeout)
		defer cancel()
		addrs, _ = net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	}
	for _, a := range addrs {
		if internalAddr(a) {
			return chatrabridge.Invalid(field, "%s points at %s, a loopback, link-local or private address: the bridge does not call into its own network (an operator can allow it with ALLOW_PRIVATE_URLS=true, as `chatrabridge dev` does for its sandbox)", field, a.Unmap())
		}
	}
	return nil
}
