package api

import (
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"

	"github.com/labstack/echo/v4"
	commonpb "go.temporal.io/api/common/v1"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/chatrabridge/chatrabridge"
	"github.com/chatrabridge/chatrabridge/internal/codec"
	"github.com/chatrabridge/chatrabridge/internal/secrets"
)

// codecServer is the codec server of Temporal's Web UI and CLI (`temporal
// --codec-endpoint`): POST <endpoint>/encode and <endpoint>/decode take and answer
// {"payloads": [...]} (payloads in protojson). The endpoint is /codec, where the token
// comes as "Authorization: Bearer <token>", or /codec/k/<token> for a Web UI without
// single sign-on, which cannot send a header of its own: its settings then hold the
// token, so it must be a CODEC_TOKEN of its own, never the admin token. Browsers may call
// it only from the origins of CODEC_CORS_ORIGINS. /encode follows PAYLOAD_ENCRYPTION:
// off, what the UI sends (a signal's input) stays clear for the workers of a release
// that cannot decode.
type codecServer struct {
	codec     *codec.Codec
	token     secrets.String // in the Authorization header: CODEC_TOKEN, else the admin token
	pathToken secrets.String // in the path: CODEC_TOKEN only, and only when it is not the admin token
	origins   []string
	logger    *slog.Logger
}

func newCodecServer(p Params) *codecServer {
	if p.Codec == nil {
		return nil
	}
	token, pathToken := p.Config.CodecToken, p.Config.CodecToken
	if token == "" {
		token = p.Config.AdminToken
	}
	if secrets.Equal(pathToken.Reveal(), p.Config.AdminToken.Reveal()) {
		pathToken = "" // a URL is logged and kept in settings: never the admin token there
	}
	return &codecServer{codec: p.Codec, token: token, pathToken: pathToken, origins: p.Config.CodecCORSOrigins, logger: p.Logger}
}

func (s *Server) codecRoutes(e *echo.Echo) {
	cs := s.codec
	if cs == nil {
		return
	}
	for _, prefix := range []string{"/codec", "/codec/k/:token"} {
		g := e.Group(prefix, cs.cors)
		for _, op := range []string{"encode", "decode"} {
			g.OPTIONS("/"+op, func(c echo.Context) error { return c.NoContent(http.StatusNoContent) })
			g.POST("/"+op, cs.handle(op), cs.authenticate)
		}
	}
}

// cors answers browsers: a request with an Origin not among the configured ones is
// refused; an allowed one gets the headers that let the Web UI read the answer, and a
// preflight (OPTIONS) is answered here. Requests without an Origin (the CLI, curl) pass.
func (cs *codecServer) cors(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		origin := c.Request().Header.Get(echo.HeaderOrigin)
		h := c.Response().Header()
		h.Add(echo.HeaderVary, echo.HeaderOrigin)
		if origin == "" {
			return next(c)
		}
		if !slices.Contains(cs.origins, strings.TrimRight(origin, "/")) {
			cs.logger.Warn("codec server: refused a request from an origin not in CODEC_CORS_ORIGINS", "origin", origin, "remote", c.RealIP())
			return chatrabridge.Errorf(chatrabridge.EFORBIDDEN, "origin %s may not call the codec server: add it to CODEC_CORS_ORIGINS", origin)
		}
		h.Set(echo.HeaderAccessControlAllowOrigin, origin)
		h.Set(echo.HeaderAccessControlAllowCredentials, "true")
		if c.Request().Method == http.MethodOptions {
			h.Set(echo.HeaderAccessControlAllowMethods, "POST, OPTIONS")
			h.Set(echo.HeaderAccessControlAllowHeaders, "Authorization, Content-Type, X-Namespace")
			h.Set(echo.HeaderAccessControlMaxAge, "600")
		}
		return next(c)
	}
}

// authenticate lets a request through with the codec token in the Authorization header
// (CODEC_TOKEN, else the admin token), or CODEC_TOKEN in the path (only when it is set and
// is not the admin token), compared in constant time.
func (cs *codecServer) authenticate(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		presented, want := c.Param("token"), cs.pathToken
		if presented == "" {
			want = cs.token
			scheme, tok, _ := strings.Cut(c.Request().Header.Get(echo.HeaderAuthorization), " ")
			if strings.EqualFold(scheme, "Bearer") {
				presented = strings.TrimSpace(tok)
			}
		}
		if want == "" || !secrets.Equal(presented, want.Reveal()) {
			cs.logger.Warn("codec server: refused a request without the codec token", "route", c.Path(), "remote", c.RealIP())
			c.Response().Header().Set(echo.HeaderWWWAuthenticate, `Bearer realm="chatrabridge codec"`)
			return chatrabridge.Errorf(chatrabridge.EUNAUTHORIZED, "missing or wrong codec token: send the header \"Authorization: Bearer <CODEC_TOKEN>\" (the admin token when CODEC_TOKEN is unset)")
		}
		return next(c)
	}
}

func (cs *codecServer) handle(op string) echo.HandlerFunc {
	return func(c echo.Context) error {
		body, err := io.ReadAll(c.Request().Body)
		if err != nil {
			return err
		}
		var in commonpb.Payloads
		if err := protojson.Unmarshal(body, &in); err != nil {
			return chatrabridge.Errorf(chatrabridge.EINVALID, "the body is not {\"payloads\": [...]} with payloads in protojson: %v", err)
		}
		var out []*commonpb.Payload
		if op == "encode" {
			out, err = cs.codec.Encode(in.GetPayloads())
		} else {
			out, err = cs.codec.Decode(in.GetPayloads())
		}
		if err != nil {
			return chatrabridge.Errorf(chatrabridge.EINVALID, "%s: %v", op, err)
		}
		b, err := protojson.Marshal(&commonpb.Payloads{Payloads: out})
		if err != nil {
			return err
		}
		return c.JSONBlob(http.StatusOK, b)
	}
}
