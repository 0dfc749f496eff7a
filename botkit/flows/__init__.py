"""Flows and states, Stealth style (botkit.flows.router), and the context moves that use them."""
from botkit.flows.context import FlowContext
from botkit.flows.router import Flows, UnknownState
from botkit.flows.routes import Router

__all__ = ["FlowContext", "Flows", "Router", "UnknownState"]
