package devserver_test

import (
	"net"
	"strconv"
	"strings"
)

func splitPort(addr string) (string, int, error) {
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, err
	}
	n, err := strconv.Atoi(p)
	return h, n, err
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }
