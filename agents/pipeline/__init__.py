"""The stream agents: decode an event, call a rule from models/, save or send, log one line."""
