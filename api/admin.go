package api

import "github.com/labstack/echo/v4"

// adminRoutes registers the admin API under /api/v1.
func (s *Server) adminRoutes(e *echo.Echo) {}
