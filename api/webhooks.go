package api

import "github.com/labstack/echo/v4"

// webhookRoutes registers Chatra's and Planfix's webhooks.
func (s *Server) webhookRoutes(e *echo.Echo) {}
