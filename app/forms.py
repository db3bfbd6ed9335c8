"""Flask-WTF forms: every browser form carries a CSRF token."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import HiddenField, PasswordField, StringField
from wtforms.validators import DataRequired, Length


class LoginForm(FlaskForm):
    username = StringField("Username or e-mail", validators=[DataRequired(), Length(max=254)])
    password = PasswordField("Password", validators=[DataRequired(), Length(max=1024)])
    ix = HiddenField()


class ConsentForm(FlaskForm):
    ix = HiddenField(validators=[DataRequired(), Length(max=64)])


class LogoutForm(FlaskForm):
    pass
