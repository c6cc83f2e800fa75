"""connectors/repositories"""
