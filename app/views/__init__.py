"""One blueprint per area; each view reads the request, calls protocol code, writes the response."""

from app.views.authorize import bp as authorize_bp
from app.views.consent import bp as consent_bp
from app.views.health import bp as health_bp
from app.views.introspect import bp as introspect_bp
from app.views.login import bp as login_bp
from app.views.register import bp as register_bp
from app.views.token import bp as token_bp
from app.views.userinfo import bp as userinfo_bp
from app.views.wellknown import bp as wellknown_bp

BLUEPRINTS = (
    wellknown_bp,
    authorize_bp,
    login_bp,
    consent_bp,
    token_bp,
    userinfo_bp,
    introspect_bp,
    register_bp,
    health_bp,
)
