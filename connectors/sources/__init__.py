"""connectors/sources"""
